package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	mobyterm "github.com/moby/term"
	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"
	"k8s.io/kubectl/pkg/util/term"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

var ctlLong = longDesc(`
	Run any etcdctl command in an etcd container, with the endpoint and
	certificate flags filled in from the member's pod spec: the escape hatch for
	what the other commands do not do. Everything after -- goes to etcdctl, and a
	flag given there wins over the filled-in one (--endpoints replaces it).

	etcdctl runs in the member named by --member (name or hex ID), or else in the
	first member that answers a health check. Standard input passes through; when
	standard input and output are both a terminal, etcdctl gets one too (watch,
	check perf, a password prompt). The command exits with etcdctl's status.

	--command-timeout is passed on only when given; etcdctl's own default is 5s,
	too short for a defrag of a large member: add --command-timeout=5m after --.`)

var ctlExample = templates.Examples(`
	# Every member's health, as etcdctl sees it
	kubectl etcd ctl -- endpoint health --cluster

	# The member list as JSON
	kubectl etcd ctl -- member list -w json

	# Watch the pods of kube-system change, from a given member
	kubectl etcd ctl --member hc-cp2 -- watch --prefix /registry/pods/kube-system/ --keys-only

	# Show the command that runs, then run it
	kubectl etcd ctl -v -- check perf`)

// CtlOptions are the options of `kubectl etcd ctl`.
type CtlOptions struct {
	*GlobalOptions
	Member  string
	Verbose bool
	// Args are etcdctl's: what follows --.
	Args []string
	// Timeout is --command-timeout when given, else 0 (etcdctl's own).
	Timeout time.Duration

	// terminal returns the local terminal to run etcdctl on, and whether
	// there is one; tests replace it.
	terminal func(in io.Reader, out io.Writer) (term.TTY, bool)
}

// NewCmdCtl returns the ctl command.
func NewCmdCtl(g *GlobalOptions) *cobra.Command {
	o := &CtlOptions{GlobalOptions: g, terminal: localTerminal}
	cmd := &cobra.Command{
		Use:     "ctl [--member MEMBER] -- ARGS...",
		Short:   "Run any etcdctl command in an etcd container, certificates filled in",
		Long:    withPolicy(ctlLong, etcd.Etcdctl),
		Example: ctlExample,
		// etcdctl's words are etcdctl's to complete.
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 0 || len(args) == 0 {
				return fmt.Errorf("put the etcdctl command after --, as in: kubectl etcd ctl -- endpoint health\nSee 'kubectl etcd ctl -h' for help and examples")
			}
			if f := cmd.Flag("command-timeout"); f != nil && f.Changed {
				o.Timeout = o.CommandTimeout
			}
			return runEArgs(o)(cmd, args)
		},
	}
	cmd.Flags().StringVar(&o.Member, "member", "", "Run etcdctl in this member (name, node, pod or hex ID) instead of the first healthy one.")
	cmd.Flags().BoolVarP(&o.Verbose, "verbose", "v", false, "Print the pod and the full etcdctl command line before running it.")
	_ = cmd.RegisterFlagCompletionFunc("member", completeMembers(g))
	return cmd
}

// Complete takes etcdctl's arguments and builds the clients.
func (o *CtlOptions) Complete(args []string) error {
	o.Args = args
	return o.GlobalOptions.Complete()
}

// Validate checks the flags.
func (o *CtlOptions) Validate() error {
	if o.Transport == TransportPortForward {
		return errors.New("--transport port-forward cannot run etcdctl: ctl runs it in the etcd container, over exec; drop --transport")
	}
	return nil
}

// Run picks the member and runs etcdctl there, on a terminal if there is
// one here.
func (o *CtlOptions) Run(ctx context.Context) error {
	members, err := o.Members(ctx)
	if err != nil {
		return err
	}
	m, err := cluster.Pick(ctx, o.TransportFor(etcd.Etcdctl), members, o.Member)
	if err != nil {
		return err
	}
	cmd := etcd.CtlCommand(m, o.Timeout, o.Args)
	t, tty := o.terminal(o.In, o.Out)
	s := exec.Streams{Stdin: o.In, Stdout: o.Out, Stderr: o.ErrOut}
	if tty {
		s = exec.Streams{Stdin: t.In, Stdout: t.Out, TTY: true, Resize: exec.TerminalSizes(t.MonitorSize(t.GetSize()))}
	}
	if o.Verbose {
		fmt.Fprintf(o.ErrOut, "member %s, pod %s/%s, container %s:\n%s\n", m.Name, m.Namespace, m.Pod, m.Container, shellJoin(cmd))
	}
	err = t.Safe(func() error { return etcd.Ctl(ctx, exec.Streaming(o.Executor), m, cmd, s) })
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return &ExitStatus{Code: exit.Code}
	}
	return err
}

// localTerminal is stdin and stdout when both are a terminal: with only
// stdin one, `ctl -- get --prefix / | jq` would get \r\n line ends.
func localTerminal(in io.Reader, out io.Writer) (term.TTY, bool) {
	t := term.TTY{In: in, Out: out}
	if !t.IsTerminalIn() || !t.IsTerminalOut() {
		return t, false
	}
	// moby's streams turn the Windows console into a VT terminal, as
	// kubectl exec -it does.
	stdin, stdout, _ := mobyterm.StdStreams()
	return term.TTY{In: stdin, Out: stdout, Raw: true}, true
}

// ExitStatus ends the process with Code and no message of its own: the
// program that exited (etcdctl) has said why on stderr.
type ExitStatus struct{ Code int }

func (e *ExitStatus) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// shellJoin quotes args for a POSIX shell, so that a verbose command line
// can be pasted.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" || strings.ContainsFunc(a, func(r rune) bool { return !safeShellRune(r) }) {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func safeShellRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r)
}
