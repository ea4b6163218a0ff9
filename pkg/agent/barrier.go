package agent

import (
	"context"
	"fmt"
)

// Barrier holds a node, its etcd stopped and its old data moved aside,
// until every member is ready to swap. Await returns nil when the node may
// swap, and an error when it must roll back.
type Barrier interface {
	Await(ctx context.Context) error
}

// BarrierSpec names the other members' agents.
type BarrierSpec struct {
	Peers []Peer `json:"peers"`
	// Timeout bounds the wait for every member; default 5m.
	Timeout Duration `json:"timeout,omitempty"`
}

// Peer is another member's agent.
type Peer struct {
	Member string `json:"member"`
	// Addr is host:port of its barrier listener, on the node's IP.
	Addr string `json:"addr"`
}

func (b *BarrierSpec) validate(self string) error {
	seen := map[string]bool{self: true}
	for _, p := range b.Peers {
		if p.Member == "" || p.Addr == "" || seen[p.Member] {
			return fmt.Errorf("barrier peer %+v: each peer needs its own member name and an address, and not this node's", p)
		}
		seen[p.Member] = true
	}
	return nil
}

// NewBarrier returns the barrier for spec: nil for a single member.
func NewBarrier(spec *RestoreSpec) Barrier {
	if spec.Barrier == nil || len(spec.Barrier.Peers) == 0 {
		return nil
	}
	return unavailableBarrier{}
}

// unavailableBarrier stands where the peer transport will: until it
// exists, a multi-member node rolls back at the barrier rather than swap
// without knowing that the others can.
type unavailableBarrier struct{}

func (unavailableBarrier) Await(context.Context) error {
	return fmt.Errorf("this agent cannot reach its peers yet (no barrier transport): rolling back rather than swapping alone")
}
