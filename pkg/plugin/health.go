package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/printers"
)

var healthExample = templates.Examples(`
	# Check every member; the exit status is 1 if any is unhealthy
	kubectl etcd health

	# In a script
	kubectl etcd health -o json >/dev/null || page-the-on-call`)

// HealthOptions are the options of `kubectl etcd health`.
type HealthOptions struct {
	ClusterReadOptions
}

// NewCmdHealth returns the health command.
func NewCmdHealth(g *GlobalOptions) *cobra.Command {
	o := &HealthOptions{ClusterReadOptions{GlobalOptions: g}}
	cmd := &cobra.Command{
		Use:     "health",
		Aliases: []string{"endpoint-health"},
		Short:   "Check the health of every etcd member",
		Long: withPolicy(longDesc(`
			Check every etcd member as etcdctl endpoint health does: a linearizable
			read must succeed and no alarm may be raised. Prints how long each check
			took and why a member is unhealthy. Exits non-zero when any member is
			unhealthy, so scripts and monitoring can use it.`), etcd.Reads),
		Example: healthExample,
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Run checks the members and prints every result before failing.
func (o *HealthOptions) Run(ctx context.Context) error {
	pods, err := o.Members(ctx)
	if err != nil {
		return err
	}
	v, herr := cluster.Health(ctx, o.TransportFor(etcd.Reads), pods)
	if err := printers.Print(o.Out, o.Output, v, printers.HealthTable(v)); err != nil {
		return err
	}
	if errors.Is(herr, cluster.ErrSomeFailed) {
		n := unhealthy(v)
		if n == len(v) {
			// The same cause everywhere (RBAC, no etcdctl...) reads better once.
			return fmt.Errorf("unhealthy cluster: no member is healthy: %s", v[0].Error)
		}
		return fmt.Errorf("unhealthy cluster: %d of %d members unhealthy", n, len(v))
	}
	return herr
}

func unhealthy(v []cluster.HealthView) int {
	n := 0
	for _, h := range v {
		if !h.Healthy {
			n++
		}
	}
	return n
}
