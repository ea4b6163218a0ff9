// Package plugin is the cobra layer of kubectl-etcd: one file per
// subcommand, each with an XOptions struct and Complete/Validate/Run. It
// holds no etcd or Kubernetes logic of its own.
package plugin

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"
)

var rootLong = longDesc(`
	Back up, restore, inspect and maintain the etcd behind a kubeadm-style control
	plane, from your workstation, with no ssh and no certificate paths.

	kubectl etcd finds the etcd members through the Kubernetes API (static pods
	labelled component=etcd in kube-system) and reads their URLs and certificate
	paths from the pod specs. It reaches etcd by exec'ing etcdctl in the etcd
	container, or by port-forwarding to the client port with the TLS material
	the pod spec names, read on the node and kept in memory only.`)

var rootExample = templates.Examples(`
	# List the members, check their health, show their status
	kubectl etcd members
	kubectl etcd health
	kubectl etcd status -o wide

	# Take a verified snapshot to a file on this machine
	kubectl etcd backup etcd.db

	# Restore it on every control-plane node (plan first, then confirm)
	kubectl etcd restore etcd.db

	# On call: recover from a NOSPACE alarm, one member at a time
	kubectl etcd defrag --compact --disarm`)

// Execute runs the command line, then deletes every helper pod that is
// still live, whichever way the command ended: an error, Ctrl-C, SIGHUP.
func Execute(ctx context.Context, streams genericiooptions.IOStreams) error {
	g := NewGlobalOptions(streams)
	err := NewCmdEtcdWithOptions(g).ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil {
		// What failed after Ctrl-C failed because of it.
		err = errors.New("interrupted")
	}
	if g.runner != nil {
		err = errors.Join(err, g.runner.Cleanup(ctx))
	}
	return err
}

// NewCmdEtcd returns the root command.
func NewCmdEtcd(streams genericiooptions.IOStreams) *cobra.Command {
	return NewCmdEtcdWithOptions(NewGlobalOptions(streams))
}

// NewCmdEtcdWithOptions returns the root command around g; tests use it to
// put fake clients in g.
func NewCmdEtcdWithOptions(g *GlobalOptions) *cobra.Command {
	streams := g.IOStreams
	cmd := &cobra.Command{
		Use:           "kubectl-etcd",
		Short:         "Back up, restore, inspect and maintain the etcd of a kubeadm-style cluster",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl etcd",
		},
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	g.AddFlags(cmd)
	cmd.AddCommand(
		NewCmdMembers(g),
		NewCmdMember(g),
		NewCmdHealth(g),
		NewCmdStatus(g),
		NewCmdBackup(g),
		NewCmdSchedule(g),
		NewCmdBundle(g),
		NewCmdCopyDB(g),
		NewCmdSnapshot(g),
		NewCmdRestore(g),
		NewCmdRecover(g),
		NewCmdDefrag(g),
		NewCmdAlarm(g),
		NewCmdMoveLeader(g),
		NewCmdCompact(g),
		NewCmdGet(g),
		NewCmdUsage(g),
		NewCmdCheck(g),
		NewCmdMetrics(g),
		NewCmdCtl(g),
		NewCmdVersion(streams),
		NewCmdCompletion(streams),
	)
	return cmd
}

// NewGlobalOptions builds the options shared by every subcommand.
func NewGlobalOptions(streams genericiooptions.IOStreams) *GlobalOptions {
	cf := genericclioptions.NewConfigFlags(true)
	// -n selects the etcd namespace, which is kube-system whatever the
	// kubeconfig context says, so ConfigFlags does not own it here.
	cf.Namespace = nil
	return &GlobalOptions{IOStreams: streams, ConfigFlags: cf, Now: time.Now, StdinIsTerminal: stdinIsTerminal}
}
