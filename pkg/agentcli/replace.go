package agentcli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// replaceCommand wires `replace sub`; nil for an unknown sub.
func (o *options) replaceCommand(fs *flag.FlagSet, sub string) func(context.Context) error {
	return o.stepsCommand(fs, sub, o.replaceStart, o.replaceRun)
}

// stepsCommand wires the subs of an operation run by the agent's steps
// under a journal (o.op): start and run as given, status and wait.
func (o *options) stepsCommand(fs *flag.FlagSet, sub string, start, run func(context.Context) error) func(context.Context) error {
	switch sub {
	case "start":
		fs.StringVar(&o.specFile, "spec", "", "the "+o.op+" spec (JSON), or - for stdin")
		fs.BoolVar(&o.follow, "follow", false, "follow the steps until the "+o.op+" ends, as `"+o.op+" wait` does")
		o.handoverTimeoutFlag(fs)
		o.waitFlags(fs)
		o.nodeLockWait = defaultNodeLockWait
		return start
	case "run":
		o.handoverFlags(fs)
		return run
	case "status":
		return o.opStatus
	case "wait":
		o.waitFlags(fs)
		return o.wait
	}
	return nil
}

// replaceStart checks the node against the spec, writes the journal and
// hands the steps to the agent's static pod: from the first step on,
// etcd on this node is stopped, and with a kubelet that talks only to
// this node's API server, no new pod of the plugin's could start here.
func (o *options) replaceStart(ctx context.Context) error {
	spec, err := o.readReplaceSpec()
	if err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("nothing was changed: %w", err)
	}
	dir, err := o.startJournal(spec.ID, spec.JournalDir, func(dir string) error { return o.prepareReplaceJournal(dir, spec) })
	if err != nil {
		other := o.unfinishedReplaceOf(spec.Member)
		if other == "" {
			return err
		}
		// A re-run (a second script, written after the first was cut
		// off) never starts a second replace: it resumes the first.
		fmt.Fprintf(o.stderr, "replace %s of member %s is unfinished on this node: resuming and following it instead of starting %s\n", other, spec.Member, spec.ID)
		o.id = other
		if dir, err = o.dir(); err != nil {
			return err
		}
		if !agent.Held(filepath.Join(dir, lockFile)) {
			if herr := o.handover(dir, "run"); herr != nil {
				fmt.Fprintf(o.stderr, "resume replace %s: %v\n", other, herr)
			}
		}
	} else if err := o.handover(dir, "run"); err != nil {
		return err
	}
	if o.follow {
		return o.wait(ctx)
	}
	return nil
}

// unfinishedReplaceOf is the id of an unfinished replace of member on
// this node, or "".
func (o *options) unfinishedReplaceOf(member string) string {
	all, err := o.journals()
	if err != nil {
		return ""
	}
	for _, j := range all {
		var s agentapi.ReplaceSpec
		if j.Unfinished() && json.Unmarshal(j.Spec, &s) == nil && s.Member == member {
			return j.ID
		}
	}
	return ""
}

func (o *options) prepareReplaceJournal(dir string, spec *agentapi.ReplaceSpec) error {
	if err := agent.PrepareReplace(o.root, spec); err != nil {
		return fmt.Errorf("nothing was changed: %w", err)
	}
	return o.writeOpJournal(dir, spec.ID, spec.Node, spec, agent.ReplaceSteps(spec, agent.ReplaceEnv{Root: o.root}))
}

// writeOpJournal writes a new journal of o.op, all steps pending, under
// the journal's lock; the caller holds the node's lock.
func (o *options) writeOpJournal(dir, id, node string, spec any, steps []agent.Step) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make the journal dir: %w", err)
	}
	lock, err := agent.TryLock(filepath.Join(dir, lockFile), 0)
	if err != nil {
		return fmt.Errorf("%s %s: %w", o.op, id, err)
	}
	defer lock.Unlock()
	jp := filepath.Join(dir, agentapi.JournalFile)
	if _, err := os.Lstat(jp); err == nil {
		return fmt.Errorf("%s %s already has a journal: resume it with `%s run`", o.op, id, o.op)
	}
	j, err := agent.NewJournal(id, o.op, node, time.Now(), spec, steps)
	if err != nil {
		return err
	}
	return agent.SaveJournal(j, jp)
}

func (o *options) readReplaceSpec() (*agentapi.ReplaceSpec, error) {
	return readSpecFile[agentapi.ReplaceSpec](o, "replace")
}

// journalSpecOf reads the journal in dir and its spec, checked again.
func journalSpecOf[T any, P interface {
	*T
	Validate() error
}](o *options, dir string) (*agentapi.Journal, P, error) {
	j, err := agentapi.LoadJournal(filepath.Join(dir, agentapi.JournalFile))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", o.op, o.id, err)
	}
	spec := P(new(T))
	if err := json.Unmarshal(j.Spec, spec); err != nil {
		return nil, nil, fmt.Errorf("%s %s: the journal holds no readable spec: %w", o.op, o.id, err)
	}
	if err := spec.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%s %s: the journal's spec: %w; nothing was changed: inspect it by hand", o.op, o.id, err)
	}
	if j.ID != o.id {
		return nil, nil, fmt.Errorf("journal %s is of %s %q, not %s: nothing was changed", dir, o.op, j.ID, o.id)
	}
	return j, spec, nil
}

// replaceRun runs or resumes the steps; as the static pod's body, it
// takes its pod out once the replace has ended.
func (o *options) replaceRun(ctx context.Context) error {
	return o.runOp(ctx, func(dir string) (*agentapi.Journal, []agent.Step, error) {
		j, spec, err := journalSpecOf[agentapi.ReplaceSpec](o, dir)
		if err != nil {
			return nil, nil, err
		}
		gw, err := agent.NewGRPC(o.root, spec.Endpoints, spec.CertFile, spec.KeyFile, spec.CAFile)
		if err != nil {
			return nil, nil, err
		}
		env := agent.ReplaceEnv{Root: o.root, Dialer: &net.Dialer{Timeout: 2 * time.Second}, HTTP: agent.ProbeHTTP(), Members: gw}
		return j, agent.ReplaceSteps(spec, env), nil
	})
}

// runOp runs or resumes the steps of o.op's journal o.id, which load
// reads with the steps that run it; as the static pod's body, it takes
// its pod out once the operation has ended.
func (o *options) runOp(ctx context.Context, load func(dir string) (*agentapi.Journal, []agent.Step, error)) error {
	dir, err := o.dir()
	if err != nil {
		return err
	}
	if o.detach {
		return o.handover(dir, "run")
	}
	body := func() error {
		lock, err := o.lockJournal(dir)
		if err != nil {
			return err
		}
		defer lock.Unlock()
		j, steps, err := load(dir)
		if err != nil {
			return err
		}
		jp := filepath.Join(dir, agentapi.JournalFile)
		e, err := agent.NewEngine(jp, j, steps)
		if err != nil {
			return err
		}
		e.Journal().PID, e.Journal().Claim = os.Getpid(), o.claimToken
		if err := agent.SaveJournal(e.Journal(), jp); err != nil {
			return err
		}
		if e.Journal().Phase == agentapi.PhaseRollingBack {
			o.logf("%s %s: resuming the interrupted rollback", o.op, o.id)
			return e.Rollback(ctx)
		}
		o.logf("%s %s: running from phase %s", o.op, o.id, e.Journal().Phase)
		if err := e.Run(ctx); err != nil {
			return err
		}
		o.logf("%s %s: done", o.op, o.id)
		return nil
	}
	if o.staticPod != "" {
		return o.asStaticPod(dir, body)
	}
	return body()
}

// opStatus prints the node's journals of o.op.
func (o *options) opStatus(context.Context) error {
	all, err := o.journals()
	if err != nil {
		return err
	}
	out := []agentapi.JournalStatus{}
	for _, j := range all {
		if o.id != "" && j.ID != o.id {
			continue
		}
		dir := filepath.Join(o.root, filepath.FromSlash(path.Join(o.journalRoot, j.ID)))
		out = append(out, agentapi.JournalStatus{Journal: *j, AgentRunning: agent.Held(filepath.Join(dir, lockFile))})
	}
	if o.id != "" && len(out) == 0 {
		return fmt.Errorf("%s %s: no journal on this node", o.op, o.id)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "%s\n", b)
	return err
}
