package agentcli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// recoverCommand wires `recover sub`; nil for an unknown sub.
func (o *options) recoverCommand(fs *flag.FlagSet, sub string) func(context.Context) error {
	if sub == "survey" {
		fs.StringVar(&o.staticPodDir, "static-pod-dir", "/etc/kubernetes/manifests", "the kubelet's static pod dir, which holds etcd's manifest")
		return o.survey
	}
	return o.stepsCommand(fs, sub, o.recoverStart, o.recoverRun)
}

// survey prints this node's etcd as read offline.
func (o *options) survey(ctx context.Context) error {
	node, _ := os.Hostname()
	s, err := agent.TakeSurvey(ctx, agent.SurveyEnv{Root: o.root, Dialer: &net.Dialer{Timeout: 2 * time.Second}, HTTP: agent.ProbeHTTP(), Node: node, Now: time.Now}, o.staticPodDir)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "%s\n", b)
	return err
}

// recoverStart checks the node against the spec, writes the journal and
// hands the steps to the agent's static pod, which the kubelet runs
// without an API server.
func (o *options) recoverStart(ctx context.Context) error {
	spec, err := readSpecFile[agentapi.RecoverSpec](o, "recover")
	if err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("nothing was changed: %w", err)
	}
	dir, err := o.startJournal(spec.ID, spec.JournalDir, func(dir string) error {
		if err := agent.PrepareRecover(o.root, spec); err != nil {
			return fmt.Errorf("nothing was changed: %w", err)
		}
		return o.writeOpJournal(dir, spec.ID, spec.Node, spec, agent.RecoverSteps(spec, agent.RecoverEnv{Root: o.root}))
	})
	if err != nil {
		return err
	}
	if err := o.handover(dir, "run"); err != nil {
		return err
	}
	if o.follow {
		return o.wait(ctx)
	}
	return nil
}

// recoverRun runs or resumes the steps.
func (o *options) recoverRun(ctx context.Context) error {
	return o.runOp(ctx, func(dir string) (*agentapi.Journal, []agent.Step, error) {
		j, spec, err := journalSpecOf[agentapi.RecoverSpec](o, dir)
		if err != nil {
			return nil, nil, err
		}
		env := agent.RecoverEnv{Root: o.root, Dialer: &net.Dialer{Timeout: 2 * time.Second}, HTTP: agent.ProbeHTTP()}
		return j, agent.RecoverSteps(spec, env), nil
	})
}
