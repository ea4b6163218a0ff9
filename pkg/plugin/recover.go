package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/confirm"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

// RecoverOptions are the options of `kubectl etcd recover`.
type RecoverOptions struct {
	ChangeOptions
	ScriptDir    string
	AgentDir     string
	ID           string
	StaticPodDir string
}

// NewCmdRecover is `kubectl etcd recover`.
func NewCmdRecover(g *GlobalOptions) *cobra.Command {
	o := &RecoverOptions{ChangeOptions: newChangeOptions(g)}
	cmd := &cobra.Command{
		Use:   "recover --script-dir DIR",
		Short: "Recover a cluster that lost its quorum from its most advanced survivor, nothing committed lost",
		Long: longDesc(`
			For a cluster that lost the quorum of its members (two of three gone, say):
			etcd cannot serve, so the API server cannot, and nothing that goes through
			the API can act. A snapshot restore loses every write since the snapshot;
			etcd's own way loses none: start the most advanced surviving member with
			--force-new-cluster, then add the others back one at a time.

			It works in two rounds over ssh, as an operator does without the API:
			1. kubectl etcd recover --script-dir DIR writes survey.sh and the agents.
			   Run it as root on every control-plane node that is left; it reads etcd's
			   WAL (the last term, commit and index) and database (applied index,
			   revision, membership) offline and changes nothing. Bring its output back
			   into DIR as survey-NODE.json.
			2. kubectl etcd recover --script-dir DIR again ranks the surveys side by side
			   (a voter before a learner, then the most raft entries kept, then the last
			   term and index), prints what each candidate would lose against the most
			   advanced one, and, once confirmed, writes recover-NODE.sh for the survivor
			   and rejoin-NODE.sh for each other node.
			3. Run them in the order printed, one node at a time. On the survivor the
			   agent, in a static pod, stops etcd, copies its data aside (kept), starts it
			   once with --force-new-cluster and then again without it. On each other
			   node it moves the old data aside (kept) and joins the survivor as a
			   learner, promoted once in sync, as member replace does.

			Each round first asks the API, for 15s at most, whether an etcd member is
			healthy: with a quorum lost it cannot tell, and the round goes on. Refused
			when a member answers healthy there or in a survey (the cluster has a
			quorum: replace the dead members instead), when the surveys are of two
			clusters, and when no voter has data (restore a snapshot instead).`),
		Example: templates.Examples(`
			# Round 1: the survey script
			kubectl etcd recover --script-dir ./recover

			# on each control-plane node, as root
			sh recover/survey.sh > recover/survey-$(hostname).json

			# Round 2: rank the surveys, write the scripts
			kubectl etcd recover --script-dir ./recover`),
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.ScriptDir, "script-dir", "", "The recovery's dir: the survey script, the surveys brought back (survey-*.json), then the recovery's scripts.")
	f.StringVar(&o.AgentDir, "agent-dir", "", "Directory holding kubectl-etcd-agent-linux-<arch> (default: beside this executable, symlinks resolved, as krew installs it).")
	f.StringVar(&o.ID, "id", "", "The recovery's id, its journal dirs on the nodes (default: the time, such as 20260102T030405Z).")
	f.StringVar(&o.StaticPodDir, "static-pod-dir", "/etc/kubernetes/manifests", "The kubelet's static pod dir on the nodes, which holds etcd's manifest.")
	return cmd
}

// Complete needs no cluster: the API does not serve without etcd (Run
// asks it only whether a member is healthy).
func (o *RecoverOptions) Complete() error {
	if o.AgentDir == "" {
		o.AgentDir = defaultAgentDir()
	}
	return nil
}

// Validate checks the flags.
func (o *RecoverOptions) Validate() error {
	if o.ScriptDir == "" {
		return fmt.Errorf("--script-dir is required: the recovery works through node scripts, since the API cannot serve without etcd's quorum")
	}
	return validateOutput(o.Output)
}

// Run writes the survey script, or ranks the surveys and writes the
// recovery's scripts.
func (o *RecoverOptions) Run(ctx context.Context) error {
	opts := o.options()
	opts.Confirm = func(q string) error {
		return confirm.Ask(o.In, o.ErrOut, o.StdinIsTerminal(), o.Yes, confirm.YesNo(q), confirm.Yes...)
	}
	res, err := membership.Recover(membership.RecoverConfig{Options: opts, ScriptDir: o.ScriptDir, AgentDir: o.AgentDir, ID: o.ID, StaticPodDir: o.StaticPodDir,
		Healthy: func() ([]string, error) { return o.healthy(ctx) }})
	return printThen(&o.ClusterReadOptions, res, printers.RecoverTable, err)
}

// healthyWait bounds the API's answer on the members' health: with a
// quorum lost the API server waits on etcd for a minute.
const healthyWait = 15 * time.Second

// healthy is which members answer healthy through the API; an error when
// the API (or etcd behind it) cannot tell.
func (o *RecoverOptions) healthy(ctx context.Context) ([]string, error) {
	if err := o.GlobalOptions.Complete(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, healthyWait)
	defer cancel()
	pods, err := o.Members(ctx)
	if err != nil {
		return nil, err
	}
	v, _ := cluster.Health(ctx, o.TransportFor(etcd.Reads), pods)
	var names []string
	for _, h := range v {
		if h.Healthy {
			names = append(names, h.Name)
		}
	}
	return names, nil
}
