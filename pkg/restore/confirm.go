package restore

import (
	"fmt"
	"io"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/confirm"
)

// Confirmation asks on a terminal for the context name, so that a restore
// never hits another cluster by a wrong current-context; without a
// terminal only --yes confirms.
func Confirmation(in io.Reader, prompt io.Writer, terminal bool, contextName string, yes bool) func(*Plan) error {
	return func(*Plan) error {
		q := fmt.Sprintf("\nThis stops the control plane. Type the context name (%s) to restore: ", contextName)
		return confirm.Ask(in, prompt, terminal, yes, q, contextName)
	}
}
