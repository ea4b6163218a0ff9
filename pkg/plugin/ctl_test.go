package plugin

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/kubectl/pkg/util/term"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// streamCall is one etcdctl run through ctl, as the container saw it.
type streamCall struct {
	pod       string
	cmd       string
	stdin     string
	tty       bool
	stderr    bool
	resizable bool
}

// ctlFake answers the health checks and member lists that pick the
// member like etcdctlFake, and records the streamed etcdctl runs.
type ctlFake struct {
	etcdctlFake
	streams []streamCall
	exit    int // etcdctl's exit status
}

func (f *ctlFake) Stream(_ context.Context, pod exec.PodRef, cmd []string, s exec.Streams) error {
	c := streamCall{pod: pod.Name, cmd: strings.Join(cmd, " "), tty: s.TTY, stderr: s.Stderr != nil, resizable: s.Resize != nil}
	if s.Stdin != nil {
		in, _ := io.ReadAll(s.Stdin)
		c.stdin = string(in)
	}
	f.streams = append(f.streams, c)
	_, _ = io.WriteString(s.Stdout, "etcdctl output\n")
	if f.exit != 0 {
		if s.Stderr != nil {
			_, _ = io.WriteString(s.Stderr, "Error: etcdctl failed\n")
		}
		return &exec.ExitError{Code: f.exit, Err: errors.New("command terminated with non-zero exit code")}
	}
	return nil
}

func (f *ctlFake) subcommands() []string {
	var out []string
	for _, c := range f.calls {
		out = append(out, strings.Join(c[len(c)-2:], " "))
	}
	return out
}

const podFlags = "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key"

func TestCtl(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		unhealthy  map[string]bool
		exit       int
		wantPod    string
		wantCmd    string
		wantCalls  []string // the etcdctl runs that picked the member
		wantErr    string
		wantErrOut string
	}{
		{name: "first healthy member", args: []string{"ctl", "--", "endpoint", "health"},
			wantPod: "etcd-hc-cp1", wantCmd: podFlags + " endpoint health", wantCalls: []string{"endpoint health"}},
		{name: "skips an unhealthy member", args: []string{"ctl", "--", "member", "list", "-w", "json"}, unhealthy: map[string]bool{"etcd-hc-cp1": true},
			wantPod: "etcd-hc-cp2", wantCmd: podFlags + " member list -w json", wantCalls: []string{"endpoint health", "endpoint health"}},
		{name: "member by name, unchecked", args: []string{"ctl", "--member", "hc-cp2", "--", "endpoint", "status"}, unhealthy: map[string]bool{"etcd-hc-cp2": true},
			wantPod: "etcd-hc-cp2", wantCmd: podFlags + " endpoint status"},
		{name: "member by hex ID", args: []string{"ctl", "--member", "2d2a09cbbff63d10", "--", "alarm", "list"},
			wantPod: "etcd-hc-cp2", wantCmd: podFlags + " alarm list", wantCalls: []string{"member list"}},
		{name: "member by 0x hex ID", args: []string{"ctl", "--member", "0x8E9E05C52164694D", "--", "alarm", "list"},
			wantPod: "etcd-hc-cp1", wantCmd: podFlags + " alarm list", wantCalls: []string{"member list"}},
		{name: "command timeout passed on when given", args: []string{"--command-timeout", "2m", "ctl", "--", "defrag"},
			wantPod: "etcd-hc-cp1", wantCalls: []string{"endpoint health"},
			wantCmd: "etcdctl --endpoints=https://127.0.0.1:2379 --command-timeout=2m0s --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key defrag"},
		{name: "stdin passes through", args: []string{"ctl", "--member", "hc-cp1", "--", "put", "/k"}, stdin: "value\n",
			wantPod: "etcd-hc-cp1", wantCmd: podFlags + " put /k"},
		{name: "verbose prints the command", args: []string{"ctl", "-v", "--member", "hc-cp1", "--", "get", "--prefix", "/registry/pods/kube system/"},
			wantPod: "etcd-hc-cp1", wantCmd: podFlags + " get --prefix /registry/pods/kube system/",
			wantErrOut: "member hc-cp1, pod kube-system/etcd-hc-cp1, container etcd:\n" + podFlags + " get --prefix '/registry/pods/kube system/'\n"},
		{name: "exit status passes through", args: []string{"ctl", "--member", "hc-cp1", "--", "get"}, exit: 3,
			wantPod: "etcd-hc-cp1", wantCmd: podFlags + " get", wantErr: "exit status 3", wantErrOut: "Error: etcdctl failed\n"},
		{name: "no healthy member", args: []string{"ctl", "--", "endpoint", "health"}, unhealthy: map[string]bool{"etcd-hc-cp1": true, "etcd-hc-cp2": true},
			wantCalls: []string{"endpoint health", "endpoint health"}, wantErr: "name it with --member"},
		{name: "unknown member", args: []string{"ctl", "--member", "hc-cp9", "--", "get", "k"}, wantErr: `no member named "hc-cp9"`},
		{name: "unknown hex ID", args: []string{"ctl", "--member", "abcdef", "--", "get", "k"}, wantCalls: []string{"member list"}, wantErr: `no member named "abcdef"`},
		{name: "no dash", args: []string{"ctl", "endpoint", "health"}, wantErr: "put the etcdctl command after --"},
		{name: "nothing after the dash", args: []string{"ctl", "--"}, wantErr: "put the etcdctl command after --"},
		{name: "port-forward cannot", args: []string{"ctl", "--transport", "port-forward", "--", "endpoint", "health"}, wantErr: "drop --transport"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := &ctlFake{etcdctlFake: etcdctlFake{unhealthy: tc.unhealthy}, exit: tc.exit}
			streams, in, out, errOut := genericiooptions.NewTestIOStreams()
			in.WriteString(tc.stdin)
			g := NewGlobalOptions(streams)
			g.Client = fake.NewClientset(etcdPod("hc-cp1"), etcdPod("hc-cp2"))
			g.Executor = ex
			cmd := NewCmdEtcdWithOptions(g)
			cmd.SetArgs(tc.args)
			err := cmd.ExecuteContext(context.Background())
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if got := strings.Join(ex.subcommands(), ", "); got != strings.Join(tc.wantCalls, ", ") {
				t.Errorf("etcdctl runs to pick the member: %q, want %q", got, strings.Join(tc.wantCalls, ", "))
			}
			if tc.wantCmd == "" {
				if len(ex.streams) != 0 {
					t.Errorf("etcdctl ran: %+v", ex.streams)
				}
				return
			}
			want := streamCall{pod: tc.wantPod, cmd: tc.wantCmd, stdin: tc.stdin, stderr: true}
			if len(ex.streams) != 1 || ex.streams[0] != want {
				t.Fatalf("streamed %+v, want %+v", ex.streams, want)
			}
			if out.String() != "etcdctl output\n" {
				t.Errorf("stdout %q", out)
			}
			if errOut.String() != tc.wantErrOut {
				t.Errorf("stderr %q, want %q", errOut, tc.wantErrOut)
			}
		})
	}
}

// TestCtlExitStatus checks the error main turns into the exit status.
func TestCtlExitStatus(t *testing.T) {
	ex := &ctlFake{exit: 2}
	_, _, err := run(t, ex, "ctl", "--member", "hc-cp1", "--", "get", "k")
	var st *ExitStatus
	if !errors.As(err, &st) || st.Code != 2 {
		t.Fatalf("err = %#v, want ExitStatus 2", err)
	}
}

// TestCtlTerminal runs ctl as on a terminal: etcdctl gets one, with the
// terminal's size, and one output stream.
func TestCtlTerminal(t *testing.T) {
	ex := &ctlFake{}
	streams, in, out, _ := genericiooptions.NewTestIOStreams()
	in.WriteString("typed")
	g := NewGlobalOptions(streams)
	g.Client = fake.NewClientset(etcdPod("hc-cp1"), etcdPod("hc-cp2"))
	g.Executor = ex
	g.Transport, g.CommandTimeout = TransportAuto, 5*time.Second
	var asked bool
	o := &CtlOptions{GlobalOptions: g, terminal: func(in io.Reader, out io.Writer) (term.TTY, bool) {
		asked = true
		return term.TTY{In: in, Out: out, Raw: true}, true
	}}
	if err := o.Complete([]string{"watch", "/k"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := streamCall{pod: "etcd-hc-cp1", cmd: podFlags + " watch /k", stdin: "typed", tty: true}
	if !asked || len(ex.streams) != 1 || ex.streams[0] != want {
		t.Fatalf("streamed %+v, want %+v", ex.streams, want)
	}
	if out.String() != "etcdctl output\n" {
		t.Errorf("stdout %q", out)
	}
}

func TestCtlTerminalNeedsAStreamExecutor(t *testing.T) {
	// An executor that cannot stream says so rather than run etcdctl
	// without the terminal it was asked for.
	err := exec.Streaming(&etcdctlFake{}).Stream(context.Background(), exec.PodRef{}, []string{"etcdctl"}, exec.Streams{TTY: true})
	if !errors.Is(err, exec.ErrNoTerminal) {
		t.Fatalf("err = %v", err)
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"etcdctl", "--endpoints=https://127.0.0.1:2379", "put", "/a b", "it's", ""})
	want := `etcdctl --endpoints=https://127.0.0.1:2379 put '/a b' 'it'\''s' ''`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
