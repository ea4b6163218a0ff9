// Package agentcli is the command line of kubectl-etcd-agent, the static
// binary that the plugin uploads to each control-plane node. It parses
// flags with the standard library: the binary must stay a few MB.
package agentcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/version"
)

// defaultNodeLockWait is how long a start waits for another start's
// checks on the node (seconds) to end.
const defaultNodeLockWait = 10 * time.Second

// errUsage marks a mistake on the command line: exit status 2.
var errUsage = errors.New("usage")

const usage = `kubectl-etcd-agent: the node side of kubectl etcd.

  restore start    --spec FILE|- [--prepare]
                                      check the node, write the journal, run the steps detached
                                      (--prepare: stop after the journal; run --detach starts it)
  restore run      --id ID [--detach] run or resume a restore's steps (--detach: in a static pod, see --static-pod)
                   [--decision commit|abort --from WHERE]
                                      a node held at the barrier: take the decision another node recorded
                                      (its barrier.json), since no peer serves it any more
  restore status   [--id ID]          print the journals as JSON
  restore wait     --id ID            follow a restore's steps until it ends; fails unless it ended done
  restore rollback --id ID [--detach] put the old manifests and data dir back
                   [--prepare | --release [--grace D] | --recall]
                                      in two phases, as over the API: --prepare on every node checks and
                                      writes the rollback's static pod aside; then --release on every node
                                      starts it, to act after --grace; --recall stops it before that
  replace start    --spec FILE|- [--follow]
                                      check the node, write the journal, run the steps in a static pod
                                      (a replace of the same member unfinished here is resumed instead);
                                      --follow: then follow them, as replace wait does
  replace run      --id ID [--detach] run or resume a member replace's steps
  replace status   [--id ID]          print the journals as JSON
  replace wait     --id ID            follow a replace's steps until it ends
  recover survey   [--static-pod-dir DIR]
                                      read this node's etcd offline (WAL, database, membership) and
                                      print it as JSON, for the choice of the survivor; changes nothing
  recover start    --spec FILE|- [--follow]
                                      the most advanced survivor of a lost quorum: check the node, write
                                      the journal, start etcd once with --force-new-cluster, in a static pod
  recover run|status|wait             as for replace
  snapshot         --endpoint URL --cert F --key F --cacert F [--compress s2|zstd]
                   [--listen ADDR [--accept-timeout D]]
                                      stream the member's snapshot to stdout as it arrives, in 1 MiB
                                      writes (compressed with --compress); its sizes and version go to stderr
                                      (--listen: to the first connection on ADDR, a pod's loopback that
                                      a port-forward reaches, after a {"listening":ADDR} line on stderr)
  version

Every path is a node path under --root (default /; the helper pod passes /host).
Journals are in --journal-root (default /var/lib/kubectl-etcd/<restore|replace|recover>), one dir per id.
`

// Main runs args (without the program name) and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdin, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 1 && args[0] == "version" {
		_, err := fmt.Fprintf(stdout, "kubectl-etcd-agent %s (commit %s, built %s)\n", version.Version, version.Commit, version.Date)
		return err
	}
	if len(args) > 0 && args[0] == "snapshot" {
		return snapshotCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) < 2 || args[0] != agentapi.RestoreOperation && args[0] != agentapi.ReplaceOperation && args[0] != agentapi.RecoverOperation {
		return fmt.Errorf("%w: want `restore start|run|status|wait|rollback`, `replace start|run|status|wait`, `recover survey|start|run|status|wait`, `snapshot` or `version`", errUsage)
	}
	o := &options{op: args[0], stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("kubectl-etcd-agent "+args[0]+" "+args[1], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.root, "root", "/", "where the node's root is mounted")
	fs.StringVar(&o.journalRoot, "journal-root", agentapi.JournalRoot(o.op), "node dir holding one journal dir per "+o.op)
	fs.StringVar(&o.id, "id", "", "the "+o.op+"'s id")
	var cmd func(context.Context) error
	if o.op != agentapi.RestoreOperation {
		if o.op == agentapi.RecoverOperation {
			cmd = o.recoverCommand(fs, args[1])
		} else {
			cmd = o.replaceCommand(fs, args[1])
		}
		if cmd == nil {
			return fmt.Errorf("%w: unknown command `%s %s`", errUsage, o.op, args[1])
		}
	} else {
		switch args[1] {
		case "start":
			fs.StringVar(&o.specFile, "spec", "", "the restore spec (JSON), or - for stdin")
			fs.BoolVar(&o.prepare, "prepare", false, "check the node and write the journal only; `restore run --id ID --detach` starts it")
			o.handoverTimeoutFlag(fs)
			o.nodeLockWait = defaultNodeLockWait
			cmd = o.start
		case "run":
			o.handoverFlags(fs)
			fs.StringVar(&o.decision, "decision", "", "commit or abort: the barrier's decision that another node recorded, for this node held at the barrier")
			fs.StringVar(&o.from, "from", "", "with --decision: where it comes from (such as \"barrier.json of node cp1\"), recorded with it")
			cmd = o.run
		case "status":
			cmd = o.status
		case "wait":
			o.waitFlags(fs)
			cmd = o.wait
		case "rollback":
			o.rollbackFlags(fs)
			cmd = o.rollback
		default:
			return fmt.Errorf("%w: unknown command `restore %s`", errUsage, args[1])
		}
	}
	if err := fs.Parse(args[2:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return cmd(ctx)
}

type options struct {
	// op is the operation: restore or replace.
	op                              string
	root, journalRoot, id, specFile string
	// staticPodDir: recover survey's.
	staticPodDir            string
	detach, prepare, follow bool
	// decision and from: run --decision (S5).
	decision, from string
	// release, recall and grace: the phases of a rollback (S6); notBefore
	// is when a released one begins.
	release, recall bool
	grace           time.Duration
	notBefore       *time.Time
	// staticPod is this agent's own manifest (a node path) when it runs
	// as a static pod, and claim the token it records in the journal.
	staticPod, claimToken string
	handoverWait          time.Duration
	// nodeLockWait bounds the wait for another start on the node.
	nodeLockWait          time.Duration
	waitTimeout, waitPoll time.Duration
	barrier               *agent.PeerBarrier
	stdin                 io.Reader
	stdout, stderr        io.Writer
}

// opName is the operation, restore when unset (tests build options by hand).
func (o *options) opName() string {
	if o.op == "" {
		return agentapi.RestoreOperation
	}
	return o.op
}

// dir is the journal dir of o.id, under the root.
func (o *options) dir() (string, error) {
	if o.id == "" || path.Base(o.id) != o.id || o.id == "." || o.id == ".." {
		return "", fmt.Errorf("%w: --id names one %s, such as 20260102T030405Z (see `%s status`)", errUsage, o.opName(), o.opName())
	}
	return filepath.Join(o.root, filepath.FromSlash(path.Join(o.journalRoot, o.id))), nil
}

// journals reads every journal on the node.
func (o *options) journals() ([]*agentapi.Journal, error) {
	return agentapi.LoadJournals(filepath.Join(o.root, filepath.FromSlash(o.journalRoot)))
}

func (o *options) status(context.Context) error {
	all, err := o.journals()
	if err != nil {
		return err
	}
	if o.id != "" {
		if _, err := o.dir(); err != nil {
			return err
		}
		if !slices.ContainsFunc(all, func(j *agentapi.Journal) bool { return j.ID == o.id }) {
			return fmt.Errorf("restore %s: no journal on this node", o.id)
		}
	}
	out := []agentapi.JournalStatus{}
	for _, j := range all {
		if o.id != "" && j.ID != o.id {
			continue
		}
		dir := filepath.Join(o.root, filepath.FromSlash(path.Join(o.journalRoot, j.ID)))
		c := agent.CheckRollback(o.root, j, all)
		e := agentapi.JournalStatus{Journal: *j, AgentRunning: agent.Held(filepath.Join(dir, lockFile)), Rollback: &c}
		if d, err := agentapi.LoadDecision(filepath.Join(dir, agentapi.BarrierFile)); err != nil {
			e.BarrierError = err.Error()
		} else {
			e.Barrier = d
		}
		if r, err := agentapi.LoadRollbackRelease(filepath.Join(dir, agentapi.RollbackFile)); err != nil {
			e.RollbackReleaseError = err.Error()
		} else {
			e.RollbackRelease = r
		}
		out = append(out, e)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "%s\n", b)
	return err
}
