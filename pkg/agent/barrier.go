package agent

import (
	"context"
	"fmt"
)

// Barrier holds a node, its etcd stopped and its old data moved aside,
// until every member is ready to swap. Await returns nil when the node may
// swap, an error when it must roll back, and one wrapping ErrHold when it
// cannot know which.
//
// Why a barrier: "if any node fails before its etcd manifest is swapped,
// every node rolls back by itself". Without one, a node that fails to stop
// its etcd rolls back while the others swap: a restored minority that
// never reaches quorum, or a restored majority beside a member on the old
// cluster ID. Either way the API server stays down.
//
// The design (the transport is not written yet; see unavailableBarrier):
// two-phase commit with a coordinator every agent can name alone, the
// member whose name sorts first (the plan sorts them).
//   - Transport: each agent serves its journal read-only over HTTPS on its
//     node IP (Peer.Addr), with the node's etcd peer certificate, and asks
//     its peers with the same certificate; both sides require a chain to
//     /etc/kubernetes/pki/etcd/ca.crt, which every control-plane node has
//     and which already guards etcd's peer port. No other channel works
//     once the API servers are down, and this one needs no new secret.
//   - A node at the barrier is "ready" (its barrier step is running).
//   - The coordinator waits until every peer is ready, records "commit" in
//     its journal dir (atomically, before it swaps) and swaps. A peer that
//     reports a failure or a rollback, or its timeout, makes it record
//     "abort" and roll back. It decides alone, so it never holds.
//   - A participant polls the coordinator: commit, it swaps; abort, it
//     rolls back. If the coordinator is unreachable it asks the others: a
//     peer that saw commit or has swapped means commit. With no answer by
//     its timeout (longer than the coordinator's), it holds (ErrHold): the
//     coordinator may have decided either way, and guessing is what splits
//     a cluster. Holding is safe, because every etcd is stopped; `restore
//     status` shows it, and a resume asks again.
//
// A decision, once recorded, is never changed, so a resumed agent reads it
// again and acts the same.
type Barrier interface {
	Await(ctx context.Context) error
}

// BarrierSpec names the other members' agents.
type BarrierSpec struct {
	Peers []Peer `json:"peers"`
	// Timeout bounds the coordinator's wait for every member.
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

// unavailableBarrier stands where the transport above will: until it
// exists, every member of a multi-member restore rolls back at the barrier,
// which keeps the rule (all roll back) at the cost of never swapping.
type unavailableBarrier struct{}

func (unavailableBarrier) Await(context.Context) error {
	return fmt.Errorf("this agent cannot reach its peers yet (no barrier transport): rolling back rather than swapping alone")
}
