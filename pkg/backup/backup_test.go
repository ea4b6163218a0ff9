package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

func member(name string) *cluster.Member {
	return &cluster.Member{Pod: discovery.Member{Name: name, Pod: "etcd-" + name, Running: true}, Status: &etcd.Status{}}
}

// failingDialer records which member each attempt dialled.
type failingDialer struct {
	dialled []string
	err     error
}

func (d *failingDialer) Name() string                                      { return "port-forward" }
func (d *failingDialer) Prepare(context.Context, []discovery.Member) error { return nil }
func (d *failingDialer) Client(_ context.Context, m discovery.Member) (etcd.Client, error) {
	d.dialled = append(d.dialled, m.Name)
	return nil, d.err
}

// TestRotation: every attempt after a failure moves to the next member,
// so a frozen member does not get all the retries.
func TestRotation(t *testing.T) {
	tests := []struct {
		name    string
		members []string
		retries int
		err     error
		want    string
	}{
		{"three members", []string{"a", "b", "c"}, 2, errors.New("stream broke"), "a b c"},
		{"wraps around", []string{"a", "b"}, 2, errors.New("stream broke"), "a b a"},
		{"one member", []string{"a"}, 2, errors.New("stream broke"), "a a a"},
		{"denied is not retried", []string{"a", "b"}, 2, fmt.Errorf("port-forward: %w", exec.ErrForbidden), "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &failingDialer{err: tt.err}
			var cs []*cluster.Member
			for _, n := range tt.members {
				cs = append(cs, member(n))
			}
			var lines []string
			s := &rotatingStream{transport: d, members: cs, notify: func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }}
			_, err := snapshot.Save(t.Context(), s.open, &snapshot.StreamSink{W: &strings.Builder{}}, snapshot.Options{Retries: tt.retries, StallTimeout: 30 * time.Second}) // no attempt lasts that long: the dialer fails at once
			if err == nil {
				t.Fatal("Save succeeded with a failing dialer")
			}
			if got := strings.Join(d.dialled, " "); got != tt.want {
				t.Errorf("dialled %q, want %q", got, tt.want)
			}
			if len(lines) != len(d.dialled) || (len(lines) > 1 && !strings.HasPrefix(lines[1], "Retrying: taking a snapshot from member")) {
				t.Errorf("notices %q", lines)
			}
		})
	}
}

func TestPermanentIfDenied(t *testing.T) {
	if !hint.IsPermanent(permanentIfDenied(fmt.Errorf("x: %w", exec.ErrForbidden))) {
		t.Error("an RBAC denial must be permanent")
	}
	if hint.IsPermanent(permanentIfDenied(errors.New("connection reset"))) {
		t.Error("a reset is not permanent")
	}
}

func TestExecCannotStream(t *testing.T) {
	// The exec transport cannot stream a snapshot; backup must say so
	// rather than hang or write a partial file.
	s := &rotatingStream{transport: &etcd.ExecTransport{}, members: []*cluster.Member{member("a")}, notify: func(string, ...any) {}}
	_, err := s.open(t.Context())
	if err == nil || !strings.Contains(err.Error(), "cannot stream snapshots") || !hint.IsPermanent(err) {
		t.Errorf("open over exec = %v", err)
	}
}

func TestClaimRefusesATakenName(t *testing.T) {
	file := t.TempDir() + "/x.db"
	first, err := claim(Config{File: file})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Abort()
	if _, err := claim(Config{File: file}); err == nil || !strings.Contains(err.Error(), "x.db.part") {
		t.Errorf("second claim = %v, want a refusal naming x.db.part", err)
	}
}

// TestStalledPath: a retry that stalls before its first byte, after a
// stall, points at the API server's own etcd; other failures keep their
// message.
func TestStalledPath(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		attempts int
		hinted   bool
	}{
		{"retry opened nothing", &snapshot.StallError{For: 5 * time.Second}, 2, true},
		{"first attempt only", &snapshot.StallError{For: 5 * time.Second}, 1, false},
		{"retry stalled mid-stream", &snapshot.StallError{For: 5 * time.Second, After: 10}, 3, false},
		{"not a stall", errors.New("stream broke"), 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := stalledPath(tt.err, tt.attempts)
			if !errors.Is(err, tt.err) {
				t.Errorf("%v lost %v", err, tt.err)
			}
			if got := strings.Contains(hint.Of(err), "--server https://NODE:6443"); got != tt.hinted {
				t.Errorf("hint %q, want one: %t", hint.Of(err), tt.hinted)
			}
		})
	}
	if !errors.Is(&snapshot.StallError{}, snapshot.ErrStalled) {
		t.Error("a StallError is not ErrStalled")
	}
}

// TestEncryptionAtRestWarns: a snapshot of a cluster whose API servers
// encrypt at rest says that its values need their keys, and records
// where the configs are; without encryption it says nothing.
func TestEncryptionAtRestWarns(t *testing.T) {
	for _, tt := range []struct {
		name    string
		servers []discovery.APIServer
		err     error
		want    string
		records int
	}{
		{name: "encrypted", servers: []discovery.APIServer{{Node: "cp1", EncryptionConfig: "/etc/kubernetes/enc.yaml"}, {Node: "cp2", EncryptionConfig: "/etc/kubernetes/enc.yaml"}},
			want: "encrypt at rest (cp1:/etc/kubernetes/enc.yaml, cp2:/etc/kubernetes/enc.yaml)", records: 2},
		{name: "plain", servers: []discovery.APIServer{{Node: "cp1"}}},
		{name: "not known", err: errors.New("pods is forbidden"), want: "not known (pods is forbidden)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var notes []string
			cfg := Config{Notify: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) },
				APIServers: func(context.Context) ([]discovery.APIServer, error) { return tt.servers, tt.err }}
			got := encryptionAtRest(context.Background(), cfg)
			if len(got) != tt.records {
				t.Errorf("recorded %v, want %d", got, tt.records)
			}
			if tt.want == "" && len(notes) > 0 || tt.want != "" && (len(notes) != 1 || !strings.Contains(notes[0], tt.want)) {
				t.Errorf("notes %q, want %q", notes, tt.want)
			}
		})
	}
}

// TestOnceAPIServers: the bundle and FILE.json's encryptionAtRest share
// one listing of the API servers.
func TestOnceAPIServers(t *testing.T) {
	calls := 0
	list := onceAPIServers(func(context.Context) ([]discovery.APIServer, error) {
		calls++
		return []discovery.APIServer{{Node: "cp1", EncryptionConfig: "/etc/kubernetes/enc.yaml"}}, nil
	})
	cfg := Config{Notify: func(string, ...any) {}, APIServers: list}
	if got := encryptionAtRest(context.Background(), cfg); len(got) != 1 {
		t.Errorf("recorded %v", got)
	}
	src := BundleSource{ConfigMaps: func(context.Context) (map[string][]byte, error) { return nil, nil }}
	if _, _, err := gatherBundle(context.Background(), src, list, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("the API servers were listed %d times, not once", calls)
	}
}
