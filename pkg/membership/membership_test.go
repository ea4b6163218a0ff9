package membership_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/change"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster/clustertest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
)

var errDown = errors.New("connection refused")

// down makes member name answer nothing.
func down(c *clustertest.Cluster, name string) {
	c.Fail["status "+name], c.Fail["get "+name], c.Fail["status-all "+name] = errDown, errDown, errDown
}

func nodes(exist map[string]bool) membership.NodeLookup {
	return func(_ context.Context, name string) (bool, bool, error) { return exist[name], exist[name], nil }
}

// TestPlans: each change's plan, refusal or result, and the calls it
// made, against the recording fake.
func TestPlans(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c *clustertest.Cluster)
		run   func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error)
	}{
		{"remove-healthy-even", nil, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			return membership.Remove(ctx, c, c.Pods(), membership.RemoveConfig{Options: o, Member: "m2"})
		}},
		{"remove-gone-node-force", func(c *clustertest.Cluster) { c.Member("m3").NoPod = true }, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			return membership.Remove(ctx, c, c.Pods(), membership.RemoveConfig{Options: o, Member: "m3", Force: true, Nodes: nodes(map[string]bool{"m1": true})})
		}},
		{"remove-deleted-node-stale-pod", func(c *clustertest.Cluster) { down(c, "m3") }, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			o.DryRun = true
			return membership.Remove(ctx, c, c.Pods(), membership.RemoveConfig{Options: o, Member: "m3", Nodes: nodes(map[string]bool{"node-m1": true, "node-m2": true})})
		}},
		{"remove-down-dry-run", func(c *clustertest.Cluster) { down(c, "m3") }, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			o.DryRun = true
			return membership.Remove(ctx, c, c.Pods(), membership.RemoveConfig{Options: o, Member: "m3", Force: true})
		}},
		{"remove-quorum-loss", func(c *clustertest.Cluster) { down(c, "m3") }, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			return membership.Remove(ctx, c, c.Pods(), membership.RemoveConfig{Options: o, Member: "m2", Force: false})
		}},
		{"add-voter-refused", func(c *clustertest.Cluster) { down(c, "m3") }, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			return membership.Add(ctx, c, c.Pods(), membership.AddConfig{Options: o, Name: "m4", PeerURLs: []string{"https://m4:2380"}})
		}},
		{"add-learner", nil, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			return membership.Add(ctx, c, c.Pods(), membership.AddConfig{Options: o, Name: "m4", PeerURLs: []string{"https://m4:2380"}, Learner: true})
		}},
		{"add-bad-url", nil, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			return membership.Add(ctx, c, c.Pods(), membership.AddConfig{Options: o, Name: "m4", PeerURLs: []string{"m4:2380"}})
		}},
		{"promote-learner", func(c *clustertest.Cluster) { c.Member("m3").Learner = true }, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			return membership.Promote(ctx, c, c.Pods(), membership.PromoteConfig{Options: o, Member: "m3"})
		}},
		{"promote-voter", nil, func(ctx context.Context, c *clustertest.Cluster, o change.Options) (*membership.Result, error) {
			return membership.Promote(ctx, c, c.Pods(), membership.PromoteConfig{Options: o, Member: "m3"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clustertest.New(3, 1<<20, 1<<19)
			c.AllInOne = true
			if tt.setup != nil {
				tt.setup(c)
			}
			var log bytes.Buffer
			res, err := tt.run(context.Background(), c, change.Options{Log: &log, HealthTimeout: 1, Poll: 1})
			var out strings.Builder
			fmt.Fprintf(&out, "--- log\n%s", log.String())
			if err != nil {
				fmt.Fprintf(&out, "--- error (permanent %t)\n%v\n", hint.IsPermanent(err), err)
			}
			if res != nil {
				fmt.Fprintf(&out, "--- result\nop %s, member %s %s, done %t, dry run %t\n", res.Op, res.Member.Name, res.Member.ID, res.Done, res.DryRun)
				if res.InitialCluster != "" {
					fmt.Fprintf(&out, "initial cluster %s (%s)\n", res.InitialCluster, res.InitialClusterState)
				}
				if res.Members != nil {
					for _, m := range res.Members.Members {
						fmt.Fprintf(&out, "  %s %s learner=%t %s\n", m.ID, m.Name, m.IsLearner, m.Status)
					}
				}
			}
			fmt.Fprintf(&out, "--- calls\n%s\n", strings.Join(c.Changes(), "\n"))
			golden.Assert(t, tt.name, []byte(out.String()))
		})
	}
}
