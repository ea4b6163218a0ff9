package membership

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// AddConfig is what `kubectl etcd member add` asks for.
type AddConfig struct {
	Options
	// Name is the name the member will start with (its --name); etcd
	// learns it when the member starts.
	Name     string
	PeerURLs []string
	// Learner adds it as a learner: it votes only once promoted, so
	// adding it never changes the quorum.
	Learner bool
}

// Add adds a member to the cluster, after a plan that says what the
// quorum becomes, and says how the member must start.
func Add(ctx context.Context, t etcd.Transport, pods []discovery.Member, cfg AddConfig) (*Result, error) {
	cfg.Defaults()
	if cfg.Name == "" {
		return nil, hint.Permanent(fmt.Errorf("no member name given"), "name the member as it will start (its --name; kubeadm uses the node's name)")
	}
	if err := checkPeerURLs(cfg.PeerURLs); err != nil {
		return nil, err
	}
	c, err := open(ctx, t, pods)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for _, mi := range c.List {
		if mi.Name == cfg.Name {
			return nil, hint.Permanent(fmt.Errorf("a member named %s is already in the cluster (%s)", cfg.Name, etcd.HexID(mi.ID)),
				"to bring back a member whose data is lost, remove it first (kubectl etcd member remove %s) and add it again; to add another, pick another name", cfg.Name)
		}
		for _, u := range mi.PeerURLs {
			for _, want := range cfg.PeerURLs {
				if u == want {
					return nil, hint.Permanent(fmt.Errorf("member %s already has the peer URL %s", listed{info: mi}.label(), u),
						"remove that member first (kubectl etcd member remove), or give the new member's own peer URL")
				}
			}
		}
	}
	res := &Result{Op: "add", Member: cluster.MemberRef{Name: cfg.Name}, DryRun: cfg.DryRun, Learner: cfg.Learner, Members: c.MemberList()}
	voters, healthyVoters := votes(c, 0)
	kind := "a voting member"
	if cfg.Learner {
		kind = "a learner (it votes once promoted: kubectl etcd member promote " + cfg.Name + ")"
	}
	cfg.Notef("Plan: add %s with peer URLs %s as %s", cfg.Name, strings.Join(cfg.PeerURLs, ","), kind)
	if cfg.Learner {
		cfg.Notef("  voting members: %d (quorum %d, %d healthy), unchanged", voters, quorum(voters), healthyVoters)
	} else {
		cfg.Notef("  voting members: %d now (quorum %d, %d healthy); %d after (quorum %d), the new one counting as down until it has started and caught up",
			voters, quorum(voters), healthyVoters, voters+1, quorum(voters+1))
		if healthyVoters < quorum(voters+1) {
			return nil, hint.Permanent(fmt.Errorf("refusing to add %s as a voting member: the quorum would become %d, and only %d members are healthy until it has started", cfg.Name, quorum(voters+1), healthyVoters),
				"add it with --learner (then member promote once it has caught up), or repair the members that are down first")
		}
	}
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was changed")
		return res, nil
	}
	if err := cfg.Confirm(fmt.Sprintf("Add member %s?", cfg.Name)); err != nil {
		return nil, err
	}
	via, err := client(c, 0)
	if err != nil {
		return nil, err
	}
	var added etcd.MemberInfo
	var list []etcd.MemberInfo
	err = retry(ctx, &cfg.Options, func() (err error) { added, list, err = via.MemberAdd(ctx, cfg.PeerURLs, cfg.Learner); return err })
	if err != nil {
		return nil, fmt.Errorf("adding %s: %w", cfg.Name, err)
	}
	res.Done, res.Member.ID, res.Members = true, etcd.HexID(added.ID), after(c, list)
	res.InitialCluster, res.InitialClusterState = initialCluster(list, added.ID, cfg.Name), "existing"
	cfg.Notef("Added %s (%s). Start it with:", cfg.Name, etcd.HexID(added.ID))
	cfg.Notef("  --name=%s", cfg.Name)
	cfg.Notef("  --initial-cluster=%s", res.InitialCluster)
	cfg.Notef("  --initial-cluster-state=existing")
	cfg.Notef("  --initial-advertise-peer-urls=%s", strings.Join(cfg.PeerURLs, ","))
	cfg.Notef("and an empty data dir.")
	return res, nil
}
