package restore

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Confirmation asks on a terminal for the context name, so that a restore
// never hits another cluster by a wrong current-context; without a
// terminal only --yes confirms.
func Confirmation(in io.Reader, prompt io.Writer, terminal bool, contextName string, yes bool) func(*Plan) error {
	return func(*Plan) error {
		if yes {
			return nil
		}
		if !terminal {
			return hint.Permanent(fmt.Errorf("not confirmed: stdin is not a terminal, so nothing was changed"),
				"read the plan above, then run again with --yes (or --dry-run to see the plan only)")
		}
		fmt.Fprintf(prompt, "\nThis stops the control plane. Type the context name (%s) to restore: ", contextName)
		line, _ := bufio.NewReader(in).ReadString('\n')
		if strings.TrimSpace(line) != contextName || contextName == "" {
			return fmt.Errorf("not confirmed (typed %q, not %q): nothing was changed", strings.TrimSpace(line), contextName)
		}
		return nil
	}
}
