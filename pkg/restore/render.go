package restore

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// nodeSteps are one node's steps as the user confirms them: the plugin's
// own (restore the data in a pod, start the agent), then the agent's, from
// the steps it will run (agent.PlanRestore).
// coordinator is the member whose agent decides at the barrier: the one
// whose name sorts first, as every agent names it (agent.NewBarrier).
func (p *Plan) coordinator() MemberPlan {
	c := p.Members[0]
	for _, m := range p.Members[1:] {
		if m.Name < c.Name {
			c = m
		}
	}
	return c
}

func (p *Plan) nodeSteps(m MemberPlan) []string {
	spec := p.AgentSpec(m)
	return append([]string{
		fmt.Sprintf("restore the snapshot into %s, in a pod of %s that writes only in %s (nothing is stopped yet)", m.NewDataDir, m.Image, m.RestoreDir),
		fmt.Sprintf("start the node's agent as the static pod %s, which carries on without the API server", path.Join(m.StaticPodDir, agentapi.AgentPodFile(p.ID, "run"))),
	}, agentSteps(&spec)...)
}

// agentSteps renders the steps the agent runs for spec, then what it does
// once they are done.
func agentSteps(spec *agentapi.RestoreSpec) []string {
	var out []string
	marked := false
	for _, st := range agent.PlanRestore(spec) {
		line := st.Name
		for i, mv := range st.Moves {
			sep := ": "
			if i > 0 {
				sep = ", then "
			}
			if mv.From != "" {
				line += fmt.Sprintf("%smove %s to %s", sep, mv.From, mv.To)
			} else {
				line += sep + "write " + mv.To
			}
		}
		if st.Detail != "" {
			line += " (" + st.Detail + ")"
		}
		if st.PointOfNoReturn && !marked {
			line += "  <- point of no return"
			marked = true
		}
		out = append(out, line)
	}
	return append(out, "mark the journal done, and take the agent's static pod out")
}

// RenderPlan prints the plan that the user confirms.
func RenderPlan(w io.Writer, p *Plan) error {
	var b strings.Builder
	s := p.Snapshot
	fmt.Fprintf(&b, "Restore %s\n", p.ID)
	fmt.Fprintf(&b, "  snapshot:        %s (%d bytes, revision %d, storage %s)\n", s.Path, s.Size, s.Revision, orDash(s.StorageVersion))
	fmt.Fprintf(&b, "  sha256:          %s\n", s.SHA256)
	fmt.Fprintf(&b, "  initial cluster: %s\n", p.InitialCluster)
	fmt.Fprintf(&b, "  cluster token:   %s\n", p.Token)
	fmt.Fprintf(&b, "  revision bump:   %s\n", p.BumpReason)
	for _, m := range p.Members {
		fmt.Fprintf(&b, "\nNode %s: member %s, etcd %s\n", m.Node, m.Name, m.Version)
		fmt.Fprintf(&b, "  peer URLs:  %s\n", strings.Join(m.PeerURLs, ","))
		fmt.Fprintf(&b, "  data dir:   %s -> %s (the old one is kept)\n", m.OldDataDir, m.NewDataDir)
		fmt.Fprintf(&b, "  journal:    %s\n", m.JournalDir)
		fmt.Fprintf(&b, "  manifests:  %s (static pod dir, %s)\n", m.StaticPodDir, m.StaticPodSource)
		fmt.Fprintf(&b, "  restore:    %s\n", strings.Join(m.RestoreArgv, " "))
		for i, st := range m.Steps {
			fmt.Fprintf(&b, "  %2d. %s\n", i+1, st)
		}
	}
	b.WriteString("\nBefore the point of no return, a failure on any node rolls every node back by itself.\n")
	if len(p.Members) > 1 {
		c := p.coordinator()
		fmt.Fprintf(&b, "Only if the coordinator's agent (member %s on node %s) never starts do the others hold at the barrier instead, with etcd stopped; the plugin then prints how to roll them back.\n", c.Name, c.Node)
	}
	if len(p.Members) == 1 {
		b.WriteString("After it, a failure rolls the single member back by itself too: the old manifests, which point at the old data dir, go back in.\n")
	} else {
		b.WriteString("After it, a failure is reported and `kubectl etcd restore --rollback` puts the old manifests back, which point at the old data dirs.\n")
	}
	for _, wn := range p.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", wn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
