package plugin

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompletionCommand(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{name: "bash", args: []string{"completion", "bash"}, want: "# bash completion V2 for kubectl-etcd"},
		{name: "zsh", args: []string{"completion", "zsh"}, want: "#compdef kubectl-etcd"},
		{name: "fish", args: []string{"completion", "fish"}, want: "# fish completion for kubectl-etcd"},
		{name: "powershell", args: []string{"completion", "powershell"}, want: "# powershell completion for kubectl-etcd"},
		{name: "unknown shell", args: []string{"completion", "tcsh"}, wantErr: `invalid argument "tcsh"`},
		{name: "no shell", args: []string{"completion"}, wantErr: "accepts 1 arg(s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, &etcdctlFake{}, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !strings.HasPrefix(out, tc.want) {
				t.Errorf("output starts with %q, want %q", firstLine(out), tc.want)
			}
		})
	}
}

// TestDynamicCompletion runs cobra's hidden __complete command, which is
// what kubectl_complete-etcd calls for "kubectl etcd <TAB>".
func TestDynamicCompletion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "subcommands",
			args: []string{"__complete", ""},
			want: []string{
				"alarm\tList and disarm etcd alarms",
				"backup\tSave a verified etcd snapshot to this machine",
				"bundle\tLay out a DR bundle's files for rebuilding a node (no cluster needed)",
				"check\tCheck topology, versions, consistency, security, capacity, performance and backups",
				"compact\tCompact the history up to a revision (for emergencies)",
				"completion\tPrint the shell completion code for bash, zsh, fish or PowerShell",
				"copy-db\tCopy a stopped member's database file from its node (not a snapshot)",
				"ctl\tRun any etcdctl command in an etcd container, certificates filled in",
				"defrag\tDefragment every member, followers first and the leader last",
				"get\tRead keys and decode the Kubernetes objects in them (read-only)",
				"health\tCheck the health of every etcd member",
				"help\tHelp about any command",
				"member\tList, add, remove, promote and replace etcd members",
				"members\tList the etcd members",
				"metrics\tShow each member's latencies, leader changes and proposals from its metrics endpoint",
				"move-leader\tHand the leadership to another member",
				"recover\tRecover a cluster that lost its quorum from its most advanced survivor, nothing committed lost",
				"restore\tRestore etcd from a snapshot on every control-plane node",
				"schedule\tTake encrypted etcd backups on a schedule, in the cluster",
				"snapshot\tInspect, verify and export snapshot files on this machine; list and fetch a schedule's backups",
				"status\tShow the status of every etcd member",
				"usage\tShow what fills the database: keys, bytes and history per resource",
				"version\tPrint the version of kubectl-etcd",
				":4",
			},
		},
		{
			name: "backup member names with their nodes",
			args: []string{"__complete", "backup", "--member", ""},
			want: []string{"hc-cp1\tmember on node hc-cp1", "hc-cp2\tmember on node hc-cp2", ":4"},
		},
		{
			name: "ctl member names",
			args: []string{"__complete", "ctl", "--member", ""},
			want: []string{"hc-cp1\tmember on node hc-cp1", "hc-cp2\tmember on node hc-cp2", ":4"},
		},
		{
			name: "ctl leaves etcdctl's words alone",
			args: []string{"__complete", "ctl", "--", ""},
			want: []string{":4"},
		},
		{
			name: "move-leader member names",
			args: []string{"__complete", "move-leader", ""},
			want: []string{"hc-cp1\tmember on node hc-cp1", "hc-cp2\tmember on node hc-cp2", ":4"},
		},
		{
			name: "move-leader takes one member",
			args: []string{"__complete", "move-leader", "hc-cp1", ""},
			want: []string{":4"},
		},
		{
			name: "check areas and checks",
			args: []string{"__complete", "check", "--only", "security.c"},
			want: []string{"security.client-tls", "security.cert-expiry", ":4"},
		},
		{
			name: "completion shells",
			args: []string{"__complete", "completion", ""},
			want: []string{"bash", "zsh", "fish", "powershell", ":4"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, &etcdctlFake{}, tc.args...)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tc.want, strings.Split(strings.TrimSpace(out), "\n")); diff != "" {
				t.Errorf("completions (-want +got):\n%s", diff)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
