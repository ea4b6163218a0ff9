// Package confirm asks the user before a command changes a cluster.
package confirm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

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
	answer, err := readLine(in)
	if err != nil {
		return err
	}
	for _, a := range accepted {
		if a != "" && answer == a {
			return nil
		}
	}
	return fmt.Errorf("not confirmed (typed %q, not %q): nothing was changed", answer, strings.Join(accepted, `" or "`))
}

// errInterrupted is Ctrl-C (or SIGTERM) at the prompt.
var errInterrupted = errors.New("interrupted at the prompt: nothing was changed")

// readLine reads one answer, and gives up at once on Ctrl-C: a read of a
// terminal does not end on a signal, and nothing may wait behind the
// prompt (the process's own handler cancels the command meanwhile).
func readLine(in io.Reader) (string, error) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(in).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case line := <-got:
		return line, nil
	case <-sigs:
		return "", errInterrupted
	}
}

// YesNo is the question of a y/N prompt; Ask it with Yes.
func YesNo(question string) string { return question + " [y/N]: " }

// Yes are the answers a y/N prompt accepts.
var Yes = []string{"y", "yes", "Y", "YES", "Yes"}
