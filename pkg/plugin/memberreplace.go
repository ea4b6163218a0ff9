package plugin

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/restore"
)

// MemberReplaceOptions are the options of `kubectl etcd member replace`.
type MemberReplaceOptions struct {
	memberArgOptions
	Status    bool
	Again     bool
	ScriptDir string
	AgentDir  string
	ID        string
	Timeout   time.Duration
}

func newCmdMemberReplace(g *GlobalOptions) *cobra.Command {
	o := &MemberReplaceOptions{memberArgOptions: memberArgOptions{ChangeOptions: newChangeOptions(g)}}
	cmd := &cobra.Command{
		Use:   "replace MEMBER",
		Short: "Replace a member whose data is lost or bad, on the same node",
		Long: withPolicy(longDesc(`
			Kubernetes' etcd guide's procedure for a member whose disk died or whose
			data is corrupt, done rather than printed, for a node that keeps its name,
			address and certificates: the node agent, in a static pod on the member's
			node, stops etcd (its manifest leaves the static pod dir), moves the data's
			member/ dir aside (kept, never deleted), removes the old member ID and adds
			it back as a learner with the same name and peer URL, starts etcd with
			--initial-cluster-state=existing and the current --initial-cluster
			(kubeadm's manifest otherwise as it was), promotes the learner once it has
			caught up, and waits until every member is healthy.

			Refused when the other members lack a quorum of healthy ones, when the
			node's kubelet cannot start a pod (on kubeadm 1.33 and later a control-plane
			kubelet talks only to its own node's API server, which needs this member),
			or when the disk lacks room for the database. The plan names the point of
			no return (the member swap): before it, a failure puts the manifest and the
			data back by itself; after it, the replace holds, and running this command
			again resumes it. A replace under way (this command killed, say) is
			followed, not started again; --status shows the node's journal. With
			--script-dir it writes the script that runs the same agent and steps on the
			node itself, for a node whose kubelet cannot start a pod.`), etcd.Maintenance),
		Example: templates.Examples(`
			# See the plan
			kubectl etcd member replace hc-cp3 --dry-run

			# Replace it
			kubectl etcd member replace hc-cp3

			# Where a replace on hc-cp3 stands
			kubectl etcd member replace hc-cp3 --status

			# Its node takes no pod (kubeadm 1.33+, its etcd down): a script to run there
			kubectl etcd member replace hc-cp3 --script-dir ./replace-hc-cp3`),
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: firstArg(completeMembers(g)),
		RunE:              runEArgs(o),
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.Status, "status", false, "Print the node's replace journals and change nothing.")
	f.StringVar(&o.ScriptDir, "script-dir", "", "Write the script that runs the replace on the member's node, and the agents beside it, into this new or empty dir, instead of reaching the node: for a node whose kubelet cannot start a pod.")
	f.BoolVar(&o.Again, "again", false, "Replace a member that a replace finished with in the last hour.")
	f.StringVar(&o.AgentDir, "agent-dir", "", "Directory holding kubectl-etcd-agent-linux-<arch> (default: beside this executable, symlinks resolved, as krew installs it).")
	f.StringVar(&o.ID, "id", "", "The replace's id, its journal dir on the node (default: the time, such as 20260102T030405Z).")
	f.DurationVar(&o.Timeout, "timeout", 20*time.Minute, "How long to follow the replace; it carries on on the node past it.")
	return cmd
}

// Run replaces the member.
func (o *MemberReplaceOptions) Run(ctx context.Context) error {
	if o.AgentDir == "" {
		o.AgentDir = defaultAgentDir()
	}
	d, pods, err := o.maintTarget(ctx)
	if err != nil {
		return err
	}
	agents := membership.PodAgents{Runner: o.Runner(), Client: o.Client, AgentDir: o.AgentDir, Namespace: o.helperNamespace(), Image: o.Image, Now: time.Now,
		Lifetime: int64((o.Timeout + 15*time.Minute) / time.Second)}
	res, err := membership.Replace(ctx, d, pods, membership.ReplaceConfig{
		Options: o.options(), Member: o.Member, ID: o.ID, Status: o.Status, Again: o.Again, ScriptDir: o.ScriptDir, AgentDir: o.AgentDir, Timeout: o.Timeout,
		StaticPodDir: restore.KubeletStaticPodDir(o.Client), Agents: agents,
		// Discovered afresh: the replaced member's pod is a new one.
		Rediscover: o.Session().Discover,
	})
	return printThen(&o.ClusterReadOptions, res, printers.ReplaceTable, err)
}
