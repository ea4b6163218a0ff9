// Package confirm asks the user before a command changes a cluster.
package confirm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Ask prints question on prompt and reads one line from in, which must be
// one of accepted (yes and y, or a context name to type). Without a
// terminal nothing is asked and only --yes confirms, so that a script
// never waits on a prompt nobody sees. No accepted answer refuses all.
func Ask(in io.Reader, prompt io.Writer, terminal, yes bool, question string, accepted ...string) error {
	if yes {
		return nil
	}
	if !terminal {
		return hint.Permanent(errors.New("not confirmed: stdin is not a terminal, so nothing was changed"),
			"read the plan above, then run again with --yes (or --dry-run to see the plan only)")
	}
	fmt.Fprint(prompt, question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	answer := strings.TrimSpace(line)
	for _, a := range accepted {
		if a != "" && answer == a {
			return nil
		}
	}
	return fmt.Errorf("not confirmed (typed %q, not %q): nothing was changed", answer, strings.Join(accepted, `" or "`))
}

// YesNo is the question of a y/N prompt; Ask it with Yes.
func YesNo(question string) string { return question + " [y/N]: " }

// Yes are the answers a y/N prompt accepts.
var Yes = []string{"y", "yes", "Y", "YES", "Yes"}
