package plugin

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// TestTransportFollowsPolicy: --transport names the transport for every
// command that can use either; auto takes the command's policy's order;
// a command that can use one transport only ignores the flag.
func TestTransportFollowsPolicy(t *testing.T) {
	name := func(tr etcd.Transport) string {
		if a, ok := tr.(*etcd.Auto); ok {
			return a.First.Name() + ", then " + a.Then.Name()
		}
		return tr.Name()
	}
	for _, tc := range []struct {
		flag   string
		policy etcd.Policy
		want   string
	}{
		{TransportAuto, etcd.Reads, "exec, then port-forward"},
		{TransportAuto, etcd.Maintenance, "port-forward, then exec"},
		{TransportExec, etcd.Maintenance, "exec"},
		{TransportPortForward, etcd.Reads, "port-forward"},
		{TransportExec, etcd.ClientAPI, "port-forward"},
		{TransportAuto, etcd.ClientAPI, "port-forward"},
		{TransportPortForward, etcd.Etcdctl, "exec"},
		{TransportAuto, etcd.Etcdctl, "exec"},
	} {
		t.Run(tc.flag+"/"+tc.want, func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			g := NewGlobalOptions(streams)
			g.Transport = tc.flag
			tr := g.TransportFor(tc.policy)
			if got := name(tr); got != tc.want {
				t.Errorf("%s under %+v: %s, want %s", tc.flag, tc.policy, got, tc.want)
			}
			if tc.flag == TransportAuto && !tc.policy.Only && g.TransportFor(tc.policy) != tr {
				t.Errorf("a second step under %+v got another auto: a switch would not hold across steps", tc.policy)
			}
		})
	}
}

// Every command that reaches etcd says how, in one line of its help.
func TestHelpStatesThePolicy(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	root := NewCmdEtcd(streams)
	for _, path := range [][]string{{"status"}, {"health"}, {"members"}, {"ctl"}, {"get"}, {"defrag"}, {"alarm"}, {"alarm", "list"}, {"alarm", "disarm"}, {"compact"}, {"move-leader"}, {"check"}, {"usage"}} {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		if n := strings.Count(cmd.Long, "\nTransport"); n != 1 {
			t.Errorf("%s: %d transport lines in its help, want 1:\n%s", cmd.CommandPath(), n, cmd.Long)
		}
	}
}
