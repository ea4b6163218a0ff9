package restore

import (
	"fmt"
	"io"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/confirm"
)

// Confirmation asks on a terminal for the context name, so that a restore
// never hits another cluster by a wrong current-context; without a
// terminal only --yes confirms. A nil plan is a rollback's confirmation.
func Confirmation(in io.Reader, prompt io.Writer, terminal bool, contextName string, yes bool) func(*Plan) error {
	return func(p *Plan) error {
		verb := "restore"
		if p == nil {
			verb = "roll back (every write since the restore is lost)"
		}
		q := fmt.Sprintf("\nThis stops the control plane. Type the context name (%s) to %s: ", contextName, verb)
		return confirm.Ask(in, prompt, terminal, yes, q, contextName)
	}
}
