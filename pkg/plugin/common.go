package plugin

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/confirm"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

// runner is what every XOptions provides.
type runner interface {
	Complete() error
	Validate() error
	Run(ctx context.Context) error
}

// runE wires an XOptions into cobra in the kubectl order.
func runE(o runner) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := o.Complete(); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// argsRunner is an XOptions whose Complete takes the positional args.
type argsRunner interface {
	Complete(args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runEArgs is runE for commands with positional args.
func runEArgs(o argsRunner) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// ClusterReadOptions are the options of the commands that read the
// cluster and print a result: the shared flags plus -o.
type ClusterReadOptions struct {
	*GlobalOptions
	Output string
}

// Complete builds the clients.
func (o *ClusterReadOptions) Complete() error { return o.GlobalOptions.Complete() }

// Validate checks the flags.
func (o *ClusterReadOptions) Validate() error { return validateOutput(o.Output) }

func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", printers.Table, "Output format: table, wide, json or yaml.")
}

func validateOutput(f string) error { return printers.ValidateFormat(f) }

// longDesc is templates.LongDesc without the space its markdown renderer
// puts before every paragraph after the first.
func longDesc(s string) string {
	lines := strings.Split(templates.LongDesc(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, " ")
	}
	return strings.Join(lines, "\n")
}

// ChangeOptions are the options of the maintenance commands, which
// speak etcd's client API: -o for the result, and for those that change
// the cluster --dry-run and --yes.
type ChangeOptions struct {
	ClusterReadOptions
	DryRun bool
	Yes    bool
}

func newChangeOptions(g *GlobalOptions) ChangeOptions {
	return ChangeOptions{ClusterReadOptions: ClusterReadOptions{GlobalOptions: g}}
}

func (o *ChangeOptions) addFlags(cmd *cobra.Command) {
	addOutputFlag(cmd, &o.Output)
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "Print the plan and change nothing.")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Do not ask for confirmation (needed without a terminal).")
}

// Validate checks the flags. Every transport serves these commands (see
// maintDialer).
func (o *ChangeOptions) Validate() error { return o.ClusterReadOptions.Validate() }

// options are the maintenance options every such command passes on.
func (o *ChangeOptions) options() maint.Options {
	return maint.Options{DryRun: o.DryRun, Confirm: o.confirm, Log: o.ErrOut, Progress: progressEvery, Now: o.Now, Poll: o.Poll}
}

// progressEvery is how often a long step says it is still running.
const progressEvery = 5 * time.Second

// confirm asks y/N on a terminal, naming the context it would change.
func (o *ChangeOptions) confirm(question string) error {
	if c := o.ContextName(); c != "" {
		question = strings.TrimSuffix(question, "?") + " in context " + c + "?"
	}
	return confirm.Ask(o.In, o.ErrOut, o.StdinIsTerminal(), o.Yes, confirm.YesNo(question), confirm.Yes...)
}

// withPolicy ends a command's help with how it reaches etcd: its one
// policy line (etcd.Policy.Help).
func withPolicy(long string, p etcd.Policy) string { return long + "\n\n" + p.Help() }

// maintTarget is the members' pods and the maintenance commands'
// transport (etcd.Maintenance).
func (o *ChangeOptions) maintTarget(ctx context.Context) (etcd.Transport, []discovery.Member, error) {
	pods, err := o.Members(ctx)
	return o.TransportFor(etcd.Maintenance), pods, err
}

// printThen prints v, when the operation got that far, and then
// returns the error of the step that failed.
func printThen[T any](o *ClusterReadOptions, v *T, table func(*T) printers.TableFunc, err error) error {
	if v == nil {
		return err
	}
	return errors.Join(err, printers.Print(o.Out, o.Output, v, table(v)))
}
