// Package agent is the node side of kubectl-etcd's long operations (restore,
// member replace, copy-db, the DR bundle): a journal on the node's disk and
// an engine that runs steps, resumes them after a crash and rolls them back.
//
// What the plugin and the agent exchange (the spec, the journal, the
// names of files, steps and pods) is pkg/agentapi. This package imports
// only that, the standard library and pkg/manifest (which adds a YAML
// parser), because it is built into the small static binary that the
// plugin uploads to each node.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// NewJournal starts a journal for steps, all pending.
func NewJournal(id, operation, node string, created time.Time, spec any, steps []Step) (*agentapi.Journal, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode the %s spec: %w", operation, err)
	}
	j := &agentapi.Journal{ID: id, Operation: operation, Node: node, Created: created.UTC(), Phase: agentapi.PhaseRunning, Spec: raw}
	for _, s := range steps {
		j.Steps = append(j.Steps, agentapi.StepRecord{Name: s.Name, State: agentapi.Pending, PointOfNoReturn: s.PointOfNoReturn, Moves: s.Moves})
	}
	return j, nil
}

// PlannedStep is a step as the plan the user confirms shows it.
type PlannedStep struct {
	Name            string
	Detail          string
	Moves           []agentapi.Move
	PointOfNoReturn bool
}

// PlanRestore lists the steps RestoreSteps builds for s, in their order:
// the plan the plugin shows before anything runs is rendered from the
// steps the agent will run, never from a copy. s is the spec as the
// plugin writes it (the agent fills in the node's addresses later, which
// no step's name or moves depend on).
func PlanRestore(spec *agentapi.RestoreSpec) []PlannedStep {
	s := *spec
	if spec.Barrier != nil {
		b := *spec.Barrier
		s.Barrier = &b
	}
	_ = s.Validate() // for its defaults only: the agent validates for real
	env := RestoreEnv{}
	if s.Barrier != nil && len(s.Barrier.Peers) > 0 {
		env.Barrier = plannedBarrier{}
	}
	var out []PlannedStep
	for _, st := range RestoreSteps(&s, nil, env) {
		out = append(out, PlannedStep{Name: st.Name, Detail: st.Detail, Moves: st.Moves, PointOfNoReturn: st.PointOfNoReturn})
	}
	return out
}

// plannedBarrier stands for the barrier in a plan, where nothing runs.
type plannedBarrier struct{}

func (plannedBarrier) Await(context.Context) error {
	return errors.New("a planned barrier never runs")
}

// SaveJournal writes j to path atomically: a crash leaves the old or the new
// record, never half of one.
func SaveJournal(j *agentapi.Journal, path string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the journal: %w", err)
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o600)
}
