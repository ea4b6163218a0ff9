package agentcli

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// waitFlags are `restore wait`'s.
func (o *options) waitFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.waitTimeout, "timeout", 20*time.Minute, "give up following after this long (the restore carries on)")
	fs.DurationVar(&o.waitPoll, "poll", time.Second, "how often to read the journal")
}

// wait follows a journal until its operation ends, printing each step as
// it starts and ends, for an operator at a node's shell (script mode). It
// fails unless the operation ended done.
func (o *options) wait(ctx context.Context) error {
	dir, err := o.dir()
	if err != nil {
		return err
	}
	jp := filepath.Join(dir, agentapi.JournalFile)
	ctx, cancel := context.WithTimeout(ctx, o.waitTimeout)
	defer cancel()
	began := time.Now()
	seen := map[string]agentapi.State{}
	phase := agentapi.Phase("")
	for {
		j, err := agentapi.LoadJournal(jp)
		if err == nil {
			for _, s := range j.Steps {
				if seen[s.Name] != s.State {
					seen[s.Name] = s.State
					if s.State != agentapi.Pending {
						fmt.Fprintf(o.stdout, "%6s  %-8s %s%s\n", time.Since(began).Round(time.Second), s.State, s.Name, errSuffix(s.Error))
					}
				}
			}
			if j.Phase != phase {
				phase = j.Phase
				fmt.Fprintf(o.stdout, "%6s  %s %s is %s%s\n", time.Since(began).Round(time.Second), o.op, j.ID, j.Phase, errSuffix(j.Error))
			}
			if j.Terminal() {
				if j.Phase != agentapi.PhaseDone {
					return fmt.Errorf("%s %s ended %s on this node%s", o.op, j.ID, j.Phase, errSuffix(j.Error))
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped following %s %s (%v); it carries on: see `%s status --id %s`", o.op, o.id, ctx.Err(), o.op, o.id)
		case <-time.After(o.waitPoll):
		}
	}
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}
