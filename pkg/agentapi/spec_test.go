package agentapi

import (
	"strings"
	"testing"
)

func validSpec() *RestoreSpec {
	return &RestoreSpec{ID: "20260102T030405Z", Member: "cp1", StaticPodDir: "/etc/kubernetes/manifests",
		JournalDir: "/var/lib/kubectl-etcd/restore/20260102T030405Z", OldDataDir: "/var/lib/etcd", NewDataDir: "/var/lib/etcd-restore-20260102T030405Z"}
}

// What the plugin wrote is checked before the agent reads the node: each
// refusal names the field, and a valid spec gets its defaults.
func TestRestoreSpecValidate(t *testing.T) {
	s := validSpec()
	if err := s.Validate(); err != nil {
		t.Fatalf("a valid spec: %v", err)
	}
	if s.StopTimeout == 0 || s.HealthyTimeout == 0 || s.PollInterval == 0 || s.AfterSwapFailure != AfterSwapStay {
		t.Errorf("defaults not filled: %+v", s)
	}
	for _, tt := range []struct {
		name, want string
		edit       func(*RestoreSpec)
	}{
		{"relative path", "oldDataDir", func(s *RestoreSpec) { s.OldDataDir = "var/lib/etcd" }},
		{"journal in static", "inside the static pod dir", func(s *RestoreSpec) { s.JournalDir = "/etc/kubernetes/manifests/r1" }},
		{"id with a slash", "single path element", func(s *RestoreSpec) { s.ID = "a/b" }},
		{"no member", "member name", func(s *RestoreSpec) { s.Member = "" }},
		{"unknown policy", "neither", func(s *RestoreSpec) { s.AfterSwapFailure = "retry" }},
		{"rollback with peers", "single member", func(s *RestoreSpec) {
			s.AfterSwapFailure = AfterSwapRollback
			s.Barrier = &BarrierSpec{Addr: "10.0.0.1:2382", Peers: []Peer{{Member: "cp2", Addr: "10.0.0.2:2382"}}}
		}},
		{"peer is this member", "each peer", func(s *RestoreSpec) {
			s.Barrier = &BarrierSpec{Addr: "10.0.0.1:2382", Peers: []Peer{{Member: "cp1", Addr: "x:1"}}}
		}},
		{"barrier without host:port", "barrier addr", func(s *RestoreSpec) {
			s.Barrier = &BarrierSpec{Addr: "10.0.0.1", Peers: []Peer{{Member: "cp2", Addr: "10.0.0.2:2382"}}}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.edit(s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// Every restore's data dir sits beside the old one, and a restore of a
// restored member does not grow the name.
func TestRestoredDataDir(t *testing.T) {
	for old, want := range map[string]string{
		"/var/lib/etcd":                          "/var/lib/etcd-restore-20260102T030405Z",
		"/var/lib/etcd-restore-20251231T235959Z": "/var/lib/etcd-restore-20260102T030405Z",
	} {
		if got := RestoredDataDir(old, "20260102T030405Z"); got != want {
			t.Errorf("RestoredDataDir(%q) = %q, want %q", old, got, want)
		}
	}
}
