package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
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
// The protocol: two-phase commit with a coordinator every agent can name
// alone, the member whose name sorts first.
//   - Transport (barrierhttp.go): each agent serves its BarrierStatus
//     read-only over HTTPS on BarrierSpec.Addr (its node IP, port
//     DefaultBarrierPort) with the node's etcd peer certificate, and asks
//     its peers with the same certificate; both sides require a chain to
//     etcd's peer CA, which every control-plane node has and which already
//     guards etcd's peer port. No other channel works once the API servers
//     are down, and this one needs no new secret.
//   - A node at the barrier is "ready": its barrier step is running.
//   - The coordinator waits until every peer is ready, records "commit" in
//     its journal dir (BarrierFile, atomically, before it swaps) and swaps.
//     A peer that reports a rollback, or its timeout, makes it record
//     "abort" and roll back. It decides alone, so it never holds.
//   - A participant polls the coordinator: commit, it records it and
//     swaps; abort (or a coordinator that rolled back without deciding),
//     it records it and rolls back. If the coordinator is unreachable it
//     asks the others: a peer that recorded a decision or has swapped
//     tells it. With no answer by its timeout (twice the coordinator's),
//     it holds (ErrHold): the coordinator may have decided either way, and
//     guessing is what splits a cluster. Holding is safe, because every
//     etcd is stopped; `restore status` shows it, and a resume asks again.
//
// A participant never leaves "ready" for a rollback without a decision
// (an interrupted wait holds too), which is why a coordinator that saw
// every peer ready may commit. A decision, once recorded, is never
// changed, so a resumed agent reads it again and acts the same.
type Barrier interface {
	Await(ctx context.Context) error
}

// NewBarrier returns the barrier for spec, nil for a single member. It
// acts only once Serve has started its listener.
func NewBarrier(root string, spec *agentapi.RestoreSpec) *PeerBarrier {
	if spec.Barrier == nil || len(spec.Barrier.Peers) == 0 {
		return nil
	}
	spec.Barrier.WithDefaults()
	names := []string{spec.Member}
	for _, p := range spec.Barrier.Peers {
		names = append(names, p.Member)
	}
	sort.Strings(names)
	return &PeerBarrier{
		root: root, spec: spec, coordinator: names[0],
		journal:  under(root, path.Join(spec.JournalDir, agentapi.JournalFile)),
		decision: under(root, path.Join(spec.JournalDir, agentapi.BarrierFile)),
		known:    map[string]bool{},
		files:    osFiles,
	}
}

// PeerBarrier is the barrier between the members' agents.
type PeerBarrier struct {
	root, journal, decision string
	spec                    *agentapi.RestoreSpec
	coordinator             string
	// why is the coordinator's reason for an abort, for the journal.
	why error
	// files writes the decision; tests make it fail.
	files fileOps

	client *http.Client
	srv    *http.Server
	served chan struct{}

	mu sync.Mutex
	// known are the peers seen to have recorded a decision or rolled back:
	// those need this node's listener no more.
	known map[string]bool
}

// BarrierStatus is what an agent serves: read from its journal and its
// BarrierFile at each request.
type BarrierStatus struct {
	ID       string            `json:"id"`
	Member   string            `json:"member"`
	Phase    agentapi.Phase    `json:"phase"`
	Barrier  agentapi.State    `json:"barrier"`
	Decision agentapi.Decision `json:"decision,omitempty"`
}

func (s *BarrierStatus) ready() bool {
	return s.Phase == agentapi.PhaseRunning && s.Barrier == agentapi.Running
}

// rolledBack: it gave up before any decision, so it will never swap.
func (s *BarrierStatus) rolledBack() bool {
	return s.Decision == "" && (s.Phase == agentapi.PhaseRollingBack || s.Phase == agentapi.PhaseRolledBack)
}

// decided is the decision the status proves: recorded, or acted on.
func (s *BarrierStatus) decided() agentapi.Decision {
	if s.Decision == "" && s.Barrier == agentapi.Done {
		return agentapi.Commit
	}
	return s.Decision
}

// Await decides, or learns, whether this node swaps.
func (b *PeerBarrier) Await(ctx context.Context) error {
	if b.srv == nil {
		return fmt.Errorf("%w: the barrier listener is not running, so the peers cannot learn of this node", ErrHold)
	}
	d, err := b.recorded()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHold, err)
	}
	if d == "" {
		if b.spec.Member == b.coordinator {
			d, err = b.coordinate(ctx)
		} else {
			d, err = b.participate(ctx)
		}
		if err != nil {
			return err
		}
		if err := b.record(d); err != nil {
			return b.unrecorded(d, err)
		}
	}
	if d != agentapi.Commit {
		why := ""
		if b.why != nil {
			why = ": " + b.why.Error()
		}
		return fmt.Errorf("the barrier decided %s (coordinator %s%s): rolling back, as every member does", d, b.coordinator, why)
	}
	return nil
}

// unrecorded says what a failed record of d means. A participant that
// learned commit holds: the others swap. So does a node whose decision
// file says commit after all, or cannot be read: the write may have
// renamed it in and failed only at the dir's fsync, and the peers, which
// read that file, may have swapped on it. A decision that is not there
// was never served, so the coordinator may roll back: the participants
// learn abort from its rollback.
func (b *PeerBarrier) unrecorded(d agentapi.Decision, err error) error {
	if d == agentapi.Commit && b.spec.Member != b.coordinator {
		return fmt.Errorf("%w: the coordinator decided commit, but %w", ErrHold, err)
	}
	got, rerr := b.recorded()
	switch {
	case rerr != nil:
		return fmt.Errorf("%w: recording %s failed (%v), and %w: the peers may have read a commit there", ErrHold, d, err, rerr)
	case got == agentapi.Commit:
		return fmt.Errorf("%w: recording commit failed (%v), but %s says commit, which the peers may have read and swapped on; fix the disk, then resume this node, which then swaps too", ErrHold, err, b.decision)
	}
	return err
}

// coordinate waits until every peer is ready, or one proves the decision.
func (b *PeerBarrier) coordinate(ctx context.Context) (agentapi.Decision, error) {
	timeout := time.Duration(b.spec.Barrier.Timeout)
	var d agentapi.Decision
	err := WaitFor(ctx, "every member at the barrier", func(ctx context.Context) error {
		var errs []error
		for _, p := range b.spec.Barrier.Peers {
			st, err := b.ask(ctx, p)
			switch {
			case err != nil:
				errs = append(errs, err)
			case st.decided() != "":
				d = st.decided() // its record outlived this node's
				return nil
			case st.rolledBack():
				d, b.why = agentapi.Abort, fmt.Errorf("%s rolled back (phase %s)", p.Member, st.Phase)
				return nil
			case !st.ready():
				errs = append(errs, fmt.Errorf("%s: phase %s, barrier step %s", p.Member, st.Phase, st.Barrier))
			}
		}
		if len(errs) == 0 {
			d = agentapi.Commit
		}
		return errors.Join(errs...)
	}, timeout, time.Duration(b.spec.PollInterval))
	if ctx.Err() != nil {
		return "", fmt.Errorf("%w: interrupted before deciding: %w", ErrHold, ctx.Err())
	}
	if err != nil {
		b.why = err
		return agentapi.Abort, nil
	}
	return d, nil
}

// participate learns the decision from the coordinator, or from a peer
// that knows it.
func (b *PeerBarrier) participate(ctx context.Context) (agentapi.Decision, error) {
	timeout := 2 * time.Duration(b.spec.Barrier.Timeout)
	var d agentapi.Decision
	err := WaitFor(ctx, "the coordinator's decision", func(ctx context.Context) error {
		var errs []error
		for _, p := range b.spec.Barrier.Peers {
			st, err := b.ask(ctx, p)
			switch {
			case err != nil:
				errs = append(errs, err)
				continue
			case st.decided() != "":
				d = st.decided()
				return nil
			case p.Member == b.coordinator && st.rolledBack():
				d = agentapi.Abort
				return nil
			case p.Member == b.coordinator:
				// Reachable and undecided: only it can decide.
				return fmt.Errorf("coordinator %s has not decided (phase %s, barrier step %s)", p.Member, st.Phase, st.Barrier)
			}
		}
		return errors.Join(errs...)
	}, timeout, time.Duration(b.spec.PollInterval))
	if err != nil {
		return "", fmt.Errorf("%w: no decision from coordinator %s or any peer: %w", ErrHold, b.coordinator, err)
	}
	return d, nil
}

// recorded reads this node's decision; "" when none is recorded yet.
func (b *PeerBarrier) recorded() (agentapi.Decision, error) {
	r, err := agentapi.LoadDecision(b.decision)
	if err != nil || r == nil {
		return "", err
	}
	return r.Decision, nil
}

// record writes d unless a decision is recorded already; the agent's
// journal lock makes read-then-write safe.
func (b *PeerBarrier) record(d agentapi.Decision) error {
	return b.write(agentapi.DecisionRecord{Decision: d, Coordinator: b.coordinator})
}

func (b *PeerBarrier) write(r agentapi.DecisionRecord) error {
	old, err := b.recorded()
	if err != nil {
		return err
	}
	if old != "" && old != r.Decision {
		return fmt.Errorf("the barrier recorded %s before, and a decision never changes", old)
	}
	r.Recorded = time.Now().UTC()
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.files.writeFile(b.decision, append(raw, '\n'), 0o600, true)
}

// status reads this node's BarrierStatus from its files.
func (b *PeerBarrier) status() (*BarrierStatus, error) {
	j, err := agentapi.LoadJournal(b.journal)
	if err != nil {
		return nil, err
	}
	st := &BarrierStatus{ID: b.spec.ID, Member: b.spec.Member, Phase: j.Phase, Barrier: agentapi.Pending}
	for _, r := range j.Steps {
		if r.Name == agentapi.StepBarrier {
			st.Barrier = r.State
		}
	}
	st.Decision, err = b.recorded()
	return st, err
}
