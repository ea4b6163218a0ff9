// Package membership changes who is in the etcd cluster: remove, add and
// promote a member from the workstation, each after a plan that says
// what the cluster's quorum becomes, and refused when the change would
// stop the cluster; and replace a member whose data is lost, through the
// node agent (pkg/agent's ReplaceSteps), which makes the same changes from
// the member's node.
package membership

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/change"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
)

// Options are what every membership change shares.
type Options = change.Options

// NodeLookup says whether a node exists and whether it is Ready, for
// the plan's words about a member without a pod; nil says nothing.
type NodeLookup func(ctx context.Context, name string) (exists, ready bool, err error)

// Result is what a membership change did, and the member list after it
// (before it, on a dry run).
type Result struct {
	Op      string            `json:"op"`
	Member  cluster.MemberRef `json:"member"`
	DryRun  bool              `json:"dryRun,omitempty"`
	Done    bool              `json:"done"`
	Learner bool              `json:"learner,omitempty"`
	// InitialCluster and InitialClusterState are what the added member
	// must start with (etcd's --initial-cluster and
	// --initial-cluster-state), as etcdctl member add prints them.
	InitialCluster      string                  `json:"initialCluster,omitempty"`
	InitialClusterState string                  `json:"initialClusterState,omitempty"`
	Members             *cluster.MemberListView `json:"members,omitempty"`
}

// listed is a member of the member list, with its pod's member when a
// pod runs it.
type listed struct {
	info etcd.MemberInfo
	m    *cluster.Member // nil: no pod runs it
}

func (l listed) label() string {
	name := l.info.Name
	if name == "" {
		name = "unstarted member"
	}
	return fmt.Sprintf("%s (%s)", name, etcd.HexID(l.info.ID))
}

func (l listed) ref() cluster.MemberRef {
	return cluster.MemberRef{Name: l.info.Name, ID: etcd.HexID(l.info.ID)}
}

// open reads the cluster with its member list, which every change
// needs, and checks each member's health.
func open(ctx context.Context, t etcd.Transport, pods []discovery.Member) (*cluster.Cluster, error) {
	c, err := cluster.Open(ctx, t, pods)
	if err != nil {
		return nil, err
	}
	if c.ListErr != nil || c.List == nil {
		c.Close()
		err := c.ListErr
		if err == nil {
			err = errors.New("no member answered")
		}
		return nil, hint.Permanent(fmt.Errorf("the member list cannot be read, so nothing was changed: %w", err),
			"a membership change needs a quorum of healthy members (see `kubectl etcd health`); when the quorum is lost for good, restore from a backup (kubectl etcd restore)")
	}
	par.Each(len(c.Members), func(i int) {
		if m := c.Members[i]; m.Err == nil {
			m.Err = c.Health(ctx, m)
		}
	})
	return c, nil
}

// openTarget opens the cluster and finds the listed member that want
// names; close the cluster when the error is nil.
func openTarget(ctx context.Context, t etcd.Transport, pods []discovery.Member, want string) (*cluster.Cluster, listed, error) {
	c, err := open(ctx, t, pods)
	if err != nil {
		return nil, listed{}, err
	}
	target, err := find(c, want)
	if err != nil {
		c.Close()
		return nil, listed{}, err
	}
	return c, target, nil
}

// find is the listed member that want names: its name, its pod's node
// or pod, or its hex ID.
func find(c *cluster.Cluster, want string) (listed, error) {
	for _, mi := range c.List {
		m := c.OfListed(mi)
		node, pod := "", ""
		if m != nil {
			node, pod = m.Pod.Node, m.Pod.Pod
		}
		if etcd.Names(want, mi.Name, node, pod, mi.ID) {
			return listed{info: mi, m: m}, nil
		}
	}
	var unstarted []string
	for _, mi := range c.List {
		if !mi.Started() {
			unstarted = append(unstarted, etcd.HexID(mi.ID))
		}
	}
	if len(unstarted) > 0 {
		return listed{}, hint.Permanent(fmt.Errorf("no member named %q or with ID %q", want, want),
			"a member that has not started has no name yet: name it by its hex ID (unstarted: %s)", strings.Join(unstarted, ", "))
	}
	return listed{}, etcd.NoSuchMember(want)
}

// refreshListed is l as list shows it now (its name and client URLs
// appear once it starts).
func refreshListed(c *cluster.Cluster, list []etcd.MemberInfo, l listed) listed {
	for _, mi := range list {
		if mi.ID == l.info.ID {
			return listed{info: mi, m: c.OfListed(mi)}
		}
	}
	return l
}

// healthy reports whether a listed member answered its health check.
func healthy(c *cluster.Cluster, id uint64) bool {
	m := c.ByID(id)
	return m != nil && m.Err == nil
}

// votes counts the voting members and the healthy ones among them,
// leaving out the member except (0: none).
func votes(c *cluster.Cluster, except uint64) (voters, healthyVoters int) {
	for _, mi := range c.List {
		if mi.IsLearner || mi.ID == except {
			continue
		}
		voters++
		if healthy(c, mi.ID) {
			healthyVoters++
		}
	}
	return voters, healthyVoters
}

func quorum(voters int) int { return voters/2 + 1 }

// client is a healthy member's client to make the change through, the
// leader's when it is healthy, never that of the member avoid (0:
// none), which may be on its way out.
func client(c *cluster.Cluster, avoid uint64) (etcd.Client, error) {
	if l := c.Leader(); l != nil && l.Err == nil && l.ID != avoid {
		return l.Client(), nil
	}
	for _, m := range c.Members {
		if m.Err == nil && m.ID != avoid && !m.IsLearner() && m.Client() != nil {
			return m.Client(), nil
		}
	}
	return nil, hint.Errorf("see `kubectl etcd health`", "no other healthy voting member to make the change through:%s", c.Problems(nil))
}

// after is the member list view once list is the member list.
func after(c *cluster.Cluster, list []etcd.MemberInfo) *cluster.MemberListView {
	if list != nil {
		c.List = list
	}
	return c.MemberList()
}

// waitHealthy waits until every member with a pod in the list is healthy.
func waitHealthy(ctx context.Context, o *Options, c *cluster.Cluster) error {
	var errs []error
	for _, m := range c.Members {
		if !listedID(c.List, m.ID) {
			continue
		}
		if err := o.WaitHealthy(ctx, c, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func listedID(list []etcd.MemberInfo, id uint64) bool {
	for _, mi := range list {
		if mi.ID == id {
			return true
		}
	}
	return false
}

// retry makes a membership change, trying again for a while what etcd
// refuses for now: it changes membership only through a member that has
// been connected to a quorum for 5 seconds, as after a restart.
func retry(ctx context.Context, o *Options, f func() error) error {
	var final error
	err := o.WaitFor(ctx, 15*time.Second, func() error {
		err := f()
		if err != nil && !errors.Is(err, rpctypes.ErrUnhealthy) {
			final = err
			return nil
		}
		return err
	})
	if final != nil {
		return final
	}
	return err
}

// checkPeerURLs checks that every URL is an http or https URL with a
// host and a port, as etcd wants its peer URLs.
func checkPeerURLs(urls []string) error {
	if len(urls) == 0 {
		return hint.Permanent(errors.New("no peer URL given"), "give --peer-urls https://ADDRESS:2380, the member's --initial-advertise-peer-urls")
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			return hint.Permanent(fmt.Errorf("peer URL %q is not scheme://host:port", s), "give the member's peer URL as etcd advertises it, such as https://10.0.0.3:2380")
		}
	}
	return nil
}

// initialCluster is what a member added to list must start with, as
// etcdctl member add prints it: name=peerURL for every member, the
// added one under name.
func initialCluster(list []etcd.MemberInfo, added uint64, name string) string {
	var parts []string
	for _, mi := range list {
		n := mi.Name
		if mi.ID == added {
			n = name
		}
		for _, u := range mi.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}
