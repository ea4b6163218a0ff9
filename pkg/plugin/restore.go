package plugin

import (
	"context"
	"fmt"
	"os"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/restore"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

var restoreLong = longDesc(`
	Restore etcd from a snapshot on this machine, on every control-plane node.

	Preflight changes nothing: the snapshot verifies and decrypts (in memory),
	FILE.json must name this cluster and its members (or --force), every node is
	Ready, and the etcd version can restore and bump the revision. The plan is
	printed and must be confirmed: on a terminal by typing the context name,
	otherwise with --yes.

	Then a node pod on each node receives the node agent and the snapshot, both
	checked by sha256; the snapshot is restored into a new data dir beside the
	old one with the cluster's own etcd image; and each node's agent, run as a
	static pod so that it outlives the API server and this command, stops the
	control plane, points etcd at the new data dir and starts it again by
	itself, keeping a journal on the node. The nodes meet at a barrier before
	the swap: a failure before it rolls every node back. The old data dir stays
	where it is and the old manifests are kept. --status reads the journals,
	--rollback puts the old manifests back (every node prepares first, then all
	are released together), and --resume passes the barrier's decision that one
	node recorded on to a node that holds there, its peers gone.

	Afterwards restart the kubelet on every node (the summary lists them): its
	informers hold what they saw before the restore.

	--from DEST takes the snapshot NAME from a schedule's destination
	(node:/DIR or s3://BUCKET/PREFIX, as kubectl etcd snapshot list shows it):
	it is copied, still encrypted, into a new 0700 directory in the system's
	temporary directory, verified with --identity, restored from there and
	removed after; the destination keeps it.

	When the API server cannot act (etcd lost its quorum), --script-dir DIR
	writes one script per node instead, with the agents and the snapshot:
	copy DIR to every control-plane node and run each script there as root.
	The plan comes from the pods, or without the API from FILE.json.`)

var restoreExample = templates.Examples(`
	# Show the plan only
	kubectl etcd restore etcd.db --dry-run

	# Restore, confirming by typing the context name
	kubectl etcd restore etcd.db

	# An encrypted snapshot, without a terminal
	kubectl etcd restore etcd.db.age --identity key.txt --yes

	# Last night's scheduled backup, from the control-plane nodes' backup dir
	kubectl etcd snapshot list node:/var/lib/etcd-backups
	kubectl etcd restore nightly-20261207T020000Z.db.zst.age --from node:/var/lib/etcd-backups --identity key.txt

	# The API server cannot act (etcd lost quorum): one script per node, to run there
	kubectl etcd restore etcd.db --script-dir ./restore-scripts

	# What the last restore did on each node; undo it
	kubectl etcd restore --status
	kubectl etcd restore --rollback

	# A node holds at the barrier: pass on the decision another node recorded
	kubectl etcd restore --resume --id 20260102T030405Z`)

// RestoreOptions are the options of `kubectl etcd restore`.
type RestoreOptions struct {
	*GlobalOptions
	File           string
	DryRun         bool
	Yes            bool
	Force          bool
	Identities     []string
	NoBumpRevision bool
	SkipHashCheck  bool
	Status         bool
	Rollback       bool
	Resume         bool
	ID             string
	ScriptDir      string
	AgentDir       string
	HealthyTimeout time.Duration
	From           string

	dest backupDest
	ids  []age.Identity
}

// NewCmdRestore returns the restore command.
func NewCmdRestore(g *GlobalOptions) *cobra.Command {
	o := &RestoreOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:     "restore FILE | NAME --from DEST | --status | --rollback | --resume",
		Short:   "Restore etcd from a snapshot on every control-plane node",
		Long:    restoreLong,
		Example: restoreExample,
		Args:    cobra.MaximumNArgs(1),
		RunE:    runEArgs(o),
	}
	f := cmd.Flags()
	f.BoolVar(&o.DryRun, "dry-run", false, "Print the plan and change nothing.")
	f.BoolVarP(&o.Yes, "yes", "y", false, "Do not ask for confirmation (needed without a terminal).")
	f.BoolVar(&o.Force, "force", false, "Restore a snapshot whose FILE.json names another cluster ID or other members (a rebuilt control plane).")
	f.StringSliceVar(&o.Identities, "identity", nil, "age identity file to decrypt an encrypted snapshot; repeatable.")
	f.BoolVar(&o.NoBumpRevision, "no-bump-revision", false, "Do not bump the revision (for etcd before 3.5.10); restart every kubelet afterwards.")
	f.BoolVar(&o.SkipHashCheck, "skip-hash-check", false, "Take a member's database copied from its data dir (copy-db), which has no sha256 trailer to check.")
	f.BoolVar(&o.Status, "status", false, "Print the restore journals of every control-plane node.")
	f.BoolVar(&o.Rollback, "rollback", false, "Put the pre-restore data dirs and manifests back on every node.")
	f.BoolVar(&o.Resume, "resume", false, "Pass the barrier's decision that one node recorded on to every node that holds at the barrier without one.")
	f.StringVar(&o.ID, "id", "", "The restore that --status, --rollback or --resume is about (default: all, or the unfinished one).")
	f.StringVar(&o.ScriptDir, "script-dir", "", "Write one shell script per control-plane node into this empty dir instead of restoring, for when the API server cannot act (lost quorum): run each on its node as root.")
	f.DurationVar(&o.HealthyTimeout, "healthy-timeout", 5*time.Minute, "How long each node waits for its restored member to be healthy once etcd runs on the restored data; past it the node reports a failure, and a single member rolls back by itself.")
	f.StringVar(&o.From, "from", "", "Take the snapshot NAME from this schedule's destination, node:/DIR or s3://BUCKET/PREFIX, as kubectl etcd snapshot list shows it.")
	o.dest.addPlaceFlags(f)
	f.StringVar(&o.AgentDir, "agent-dir", "", "Directory holding kubectl-etcd-agent-linux-<arch> (default: beside this executable, symlinks resolved, as krew installs it).")
	return cmd
}

// Complete reads the identities and builds the clients.
func (o *RestoreOptions) Complete(args []string) error {
	if len(args) == 1 {
		o.File = args[0]
	}
	if len(o.Identities) > 0 {
		ids, err := snapshot.Identities(o.Identities)
		if err != nil {
			return err
		}
		o.ids = ids
	}
	if o.AgentDir == "" {
		o.AgentDir = defaultAgentDir()
	}
	if o.From != "" {
		o.dest.Identities = o.Identities
		if err := o.dest.complete(o.GlobalOptions, o.From); err != nil {
			return err
		}
	}
	return o.GlobalOptions.Complete()
}

// Validate checks the flags.
func (o *RestoreOptions) Validate() error {
	journals := o.Status || o.Rollback || o.Resume
	switch {
	case o.ScriptDir != "" && journals:
		return fmt.Errorf("--script-dir writes a restore's scripts: it takes a FILE, not --status, --rollback or --resume")
	case o.Status && o.Rollback || o.Status && o.Resume || o.Rollback && o.Resume:
		return fmt.Errorf("--status, --rollback and --resume exclude each other")
	case journals && o.File != "":
		return fmt.Errorf("--status, --rollback and --resume take no FILE")
	case !journals && o.File == "" && o.From != "":
		return fmt.Errorf("--from %s needs the NAME of a snapshot there: kubectl etcd snapshot list %s shows them", o.From, o.From)
	case !journals && o.File == "":
		return fmt.Errorf("restore needs a snapshot FILE, or --status, --rollback or --resume")
	case o.From != "" && journals:
		return fmt.Errorf("--from is where a restore's snapshot is: it goes with NAME, not --status, --rollback or --resume")
	case o.From == "" && len(o.dest.Nodes)+len(o.dest.S3Endpoint+o.dest.S3Region+o.dest.S3Secret) > 0:
		return fmt.Errorf("--node, --s3-endpoint, --s3-region and --s3-secret say how to reach --from DEST, which is not given")
	case o.ID != "" && !journals:
		return fmt.Errorf("--id is for --status, --rollback and --resume")
	case o.HealthyTimeout < 10*time.Second:
		return fmt.Errorf("--healthy-timeout %s is too short for an etcd to start on its data: give it 10s or more", o.HealthyTimeout)
	case o.From != "":
		return o.dest.validate()
	}
	return nil
}

// Run restores, or reads or rolls back the journals.
func (o *RestoreOptions) Run(ctx context.Context) error {
	// Members are discovered afresh on each call: the pods change while
	// the control plane restarts.
	d := restore.Deps{Client: o.Client, Exec: o.Executor, Reads: o.TransportFor(etcd.Reads), Members: o.Session().Discover,
		StaticPodDir: restore.KubeletStaticPodDir(o.Client), Clients: o.TransportFor(etcd.ClientAPI),
		APIServers: func(ctx context.Context) ([]discovery.APIServer, error) {
			return discovery.APIServers(ctx, o.Client, o.Namespace)
		}}
	if o.From != "" {
		got, done, err := schedule.FetchForRestore(ctx, o.dest.deps(), schedule.GetConfig{Browse: o.dest.browse, Name: o.File}, os.TempDir())
		if err != nil {
			return err
		}
		defer done()
		fmt.Fprintf(o.ErrOut, "Copied %s from %s (%s, sha256 %s, %s) to restore from; it is removed afterwards.\n",
			got.Name, got.From, printers.Bytes(got.Size), got.Verified.SHA256, fetchedChecked(got))
		o.File = got.File
	}
	ctxName := o.ContextName()
	cfg := restore.Config{
		File: o.File, Identities: o.ids, Force: o.Force, NoBumpRevision: o.NoBumpRevision, SkipHashCheck: o.SkipHashCheck, DryRun: o.DryRun,
		Confirm:   restore.Confirmation(o.In, o.ErrOut, o.StdinIsTerminal(), ctxName, o.Yes),
		Namespace: o.helperNamespace(), Image: o.Image, AgentDir: o.AgentDir, ID: o.ID,
		ScriptDir: o.ScriptDir, HealthyTimeout: o.HealthyTimeout, Out: o.Out, ErrOut: o.ErrOut,
	}
	switch {
	case o.ScriptDir != "":
		_, err := restore.Scripts(ctx, d, cfg)
		return err
	case o.Status:
		_, err := restore.Status(ctx, d, cfg)
		return err
	case o.Rollback:
		return restore.Rollback(ctx, d, cfg)
	case o.Resume:
		return restore.Resume(ctx, d, cfg)
	}
	_, err := restore.Run(ctx, d, cfg)
	return err
}

// fetchedChecked says what was checked of a copy from a destination.
func fetchedChecked(got *schedule.Got) string {
	if got.Verified.Content {
		return "decrypted and checked against etcd's sha256 trailer"
	}
	return "its age header read; the preflight decrypts and checks it"
}

// defaultAgentDir is where this executable's release put the node
// agents, "" if it cannot be told.
func defaultAgentDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return agentclient.DirOf(exe)
}

func stdinIsTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }
