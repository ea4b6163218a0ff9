package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// node is a temp dir standing for a control-plane node's root, laid out as
// the restore finds it: the restore pod has already written the new data dir.
type node struct {
	root, static, journalDir, journal string
}

func newNode(t *testing.T) *node {
	t.Helper()
	root := t.TempDir()
	n := &node{root: root, static: filepath.Join(root, "etc/kubernetes/manifests"), journalDir: filepath.Join(root, "var/lib/kubectl-etcd/restore/r1")}
	n.journal = filepath.Join(n.journalDir, "journal.json")
	for p, body := range map[string]string{
		"etc/kubernetes/manifests/kube-apiserver.yaml":          "apiserver\n",
		"etc/kubernetes/manifests/kube-controller-manager.yaml": "kcm\n",
		"etc/kubernetes/manifests/kube-scheduler.yaml":          "scheduler\n",
		"etc/kubernetes/manifests/etcd.yaml":                    "etcd old\n",
		"var/lib/etcd/member/snap/db":                           "old db",
		"var/lib/etcd-restore-x/member/snap/db":                 "restored db",
	} {
		mustWrite(t, filepath.Join(root, p), body)
	}
	if err := os.MkdirAll(n.journalDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustWrite(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gone holds when path does not exist: the fake for "its port refuses".
func gone(path string) Condition {
	return func(context.Context) error {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s still there", path)
		}
		return nil
	}
}

// steps mirror the restore's order on one node.
func (n *node) steps() []Step {
	s, j := n.static, n.journalDir
	aside := func(f string) (string, string) { return filepath.Join(s, f), filepath.Join(j, "manifests", f) }
	api, apiA := aside("kube-apiserver.yaml")
	kcm, kcmA := aside("kube-controller-manager.yaml")
	sch, schA := aside("kube-scheduler.yaml")
	etcd, etcdA := aside("etcd.yaml")
	wait := func(name string, c Condition) Step { return WaitStep(name, name, c, time.Second, time.Millisecond) }
	return []Step{
		MoveStep("stop kube-apiserver", api, apiA),
		MoveStep("stop kube-controller-manager", kcm, kcmA),
		MoveStep("stop kube-scheduler", sch, schA),
		wait("kube-apiserver gone", gone(api)),
		MoveStep("stop etcd", etcd, etcdA),
		wait("etcd gone", gone(etcd)),
		MoveStep("move the old data dir aside", filepath.Join(n.root, "var/lib/etcd"), filepath.Join(j, "data/etcd")),
		WriteStep("start etcd on the restored data", etcd, filepath.Join(j, "restored/etcd.yaml"), []byte("etcd new\n"), true),
		wait("etcd healthy", func(context.Context) error { _, err := os.Stat(etcd); return err }),
		PutBackStep("start kube-apiserver", api, apiA),
		PutBackStep("start kube-controller-manager", kcm, kcmA),
		PutBackStep("start kube-scheduler", sch, schA),
	}
}

const pnr = 7 // index of the point-of-no-return step

// tree maps each file under root (but the journal itself) to its content,
// and each dir to "/".
func tree(t *testing.T, root string, skipJournalDir bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case skipJournalDir && rel == "var/lib/kubectl-etcd":
			return fs.SkipDir
		case d.Name() == "journal.json":
			return nil
		case d.IsDir():
			out[rel] = "/"
		default:
			b, err := os.ReadFile(p)
			out[rel] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func start(t *testing.T, n *node, steps []Step) *Engine {
	t.Helper()
	j, err := NewJournal("r1", "restore", "cp1", time.Unix(0, 0), map[string]string{"dataDir": "/var/lib/etcd-restore-x"}, steps)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(n.journal, j, steps)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func resume(t *testing.T, n *node) *Engine {
	t.Helper()
	return resumeWith(t, n, n.steps())
}

type crash struct{}

// crashAt makes step k panic, as a killed agent would stop, before or
// after its action.
func crashAt(steps []Step, k int, afterAction bool) []Step {
	do := steps[k].Do
	steps[k].Do = func(ctx context.Context) error {
		if afterAction {
			if err := do(ctx); err != nil {
				return err
			}
		}
		panic(crash{})
	}
	return steps
}

func runUntilCrash(t *testing.T, e *Engine) {
	t.Helper()
	defer func() {
		if r := recover(); r != (crash{}) {
			t.Fatalf("recovered %v, want a crash", r)
		}
	}()
	e.Run(context.Background())
}

func finalTree(t *testing.T) map[string]string {
	n := newNode(t)
	if err := start(t, n, n.steps()).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tree(t, n.root, false)
}

func TestCrashAtEveryStepThenResumeOrRollback(t *testing.T) {
	want := finalTree(t)
	for k := range newNode(t).steps() {
		for _, after := range []bool{false, true} {
			for _, then := range []string{"resume", "rollback"} {
				t.Run(fmt.Sprintf("step%02d/after=%v/%s", k, after, then), func(t *testing.T) {
					t.Parallel()
					n := newNode(t)
					orig := tree(t, n.root, true)
					runUntilCrash(t, start(t, n, crashAt(n.steps(), k, after)))
					e := resume(t, n)
					if got := e.Journal().Steps[k].State; got != agentapi.Running {
						t.Fatalf("step %d found %s after the crash, want running", k, got)
					}
					if then == "resume" {
						if err := e.Run(context.Background()); err != nil {
							t.Fatal(err)
						}
						assertPhase(t, n, agentapi.PhaseDone)
						if d := cmp.Diff(want, tree(t, n.root, false)); d != "" {
							t.Errorf("resumed tree (-want +got):\n%s", d)
						}
						return
					}
					if err := e.Rollback(context.Background()); err != nil {
						t.Fatal(err)
					}
					assertPhase(t, n, agentapi.PhaseRolledBack)
					if d := cmp.Diff(orig, tree(t, n.root, true)); d != "" {
						t.Errorf("rolled-back tree (-want +got):\n%s", d)
					}
				})
			}
		}
	}
}

func assertPhase(t *testing.T, n *node, want agentapi.Phase) {
	t.Helper()
	j, err := agentapi.LoadJournal(n.journal)
	if err != nil {
		t.Fatal(err)
	}
	if j.Phase != want {
		t.Errorf("phase = %s, want %s", j.Phase, want)
	}
}

func TestFailureBeforeAndAfterThePointOfNoReturn(t *testing.T) {
	for k := range newNode(t).steps() {
		t.Run(fmt.Sprintf("step%02d", k), func(t *testing.T) {
			t.Parallel()
			n := newNode(t)
			orig := tree(t, n.root, true)
			steps := n.steps()
			steps[k].Do = func(context.Context) error { return errors.New("boom") }
			err := start(t, n, steps).Run(context.Background())
			// A failing point-of-no-return step changed nothing (its Do is
			// atomic), so the node still rolls back by itself.
			if k <= pnr {
				if !errors.Is(err, ErrRolledBack) {
					t.Fatalf("err = %v, want a rollback", err)
				}
				assertPhase(t, n, agentapi.PhaseRolledBack)
			} else {
				if !errors.Is(err, ErrPastPointOfNoReturn) {
					t.Fatalf("err = %v, want past the point of no return", err)
				}
				assertPhase(t, n, agentapi.PhaseFailed)
				if err := resume(t, n).Rollback(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if d := cmp.Diff(orig, tree(t, n.root, true)); d != "" {
				t.Errorf("tree after rollback (-want +got):\n%s", d)
			}
		})
	}
}

func TestRollbackAfterSuccessAndTwice(t *testing.T) {
	n := newNode(t)
	orig := tree(t, n.root, true)
	if err := start(t, n, n.steps()).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := resume(t, n).Rollback(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := cmp.Diff(orig, tree(t, n.root, true)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if err := resume(t, n).Run(context.Background()); err == nil {
		t.Error("Run after a rollback succeeded; want a refusal")
	}
}

func TestEngineRefusesOtherSteps(t *testing.T) {
	n := newNode(t)
	steps := n.steps()
	j, _ := NewJournal("r1", "restore", "cp1", time.Now(), nil, steps)
	if _, err := NewEngine(n.journal, j, steps[1:]); err == nil {
		t.Error("fewer steps accepted")
	}
	steps[3].Name = "renamed"
	if _, err := NewEngine(n.journal, j, steps); err == nil {
		t.Error("renamed step accepted")
	}
}

func TestHoldStopsWithoutRollback(t *testing.T) {
	n := newNode(t)
	steps := n.steps()
	steps[6].Do = func(context.Context) error { return fmt.Errorf("no decision: %w", ErrHold) }
	err := start(t, n, steps).Run(context.Background())
	if !errors.Is(err, ErrPastPointOfNoReturn) || !errors.Is(err, ErrHold) {
		t.Fatalf("err = %v, want a hold", err)
	}
	assertPhase(t, n, agentapi.PhaseFailed)
	if _, err := os.Stat(filepath.Join(n.journalDir, "manifests/etcd.yaml")); err != nil {
		t.Errorf("a hold undid a step: %v", err)
	}
	if err := resume(t, n).Run(context.Background()); err != nil {
		t.Errorf("resume after a hold: %v", err)
	}
}

// failingSync is a fileOps whose dir fsyncs fail: a rename takes effect,
// then reports ErrNotDurable.
var failingSync = fileOps{rename: os.Rename, fsync: func(p string) error {
	return &os.PathError{Op: "sync", Path: p, Err: syscall.EIO}
}}

// A step that acted but could not make it durable is undone by the
// rollback; one that failed having changed nothing is left alone (D4.3).
func TestStepThatActedButIsNotDurable(t *testing.T) {
	for _, tt := range []struct {
		name      string
		k         int
		do        func(n *node) func(context.Context) error
		wantErr   error
		wantState agentapi.State // the step's, after Run
	}{
		{"stop etcd, its dir fsync failed", 4, func(n *node) func(context.Context) error {
			return func(context.Context) error {
				return failingSync.moveAside(filepath.Join(n.static, "etcd.yaml"), filepath.Join(n.journalDir, "manifests/etcd.yaml"))
			}
		}, ErrRolledBack, agentapi.Undone},
		{"stop etcd failed, changed nothing", 4, func(*node) func(context.Context) error {
			return func(context.Context) error { return errors.New("boom") }
		}, ErrRolledBack, agentapi.Failed},
		{"the swap, its dir fsync failed", pnr, func(n *node) func(context.Context) error {
			return func(context.Context) error {
				return failingSync.writeFile(filepath.Join(n.static, "etcd.yaml"), []byte("etcd new\n"), 0o600, false)
			}
		}, ErrPastPointOfNoReturn, agentapi.Running},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t)
			orig := tree(t, n.root, true)
			steps := n.steps()
			steps[tt.k].Do = tt.do(n)
			e := start(t, n, steps)
			if err := e.Run(context.Background()); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := e.Journal().Steps[tt.k].State; got != tt.wantState {
				t.Errorf("step %q %s, want %s", steps[tt.k].Name, got, tt.wantState)
			}
			if errors.Is(tt.wantErr, ErrPastPointOfNoReturn) {
				assertPhase(t, n, agentapi.PhaseFailed)
				if err := resume(t, n).Rollback(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			assertPhase(t, n, agentapi.PhaseRolledBack)
			if d := cmp.Diff(orig, tree(t, n.root, true)); d != "" {
				t.Errorf("tree after the rollback (-want +got):\n%s", d)
			}
		})
	}
}
