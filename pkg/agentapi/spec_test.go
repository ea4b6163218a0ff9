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

// Replace and recover specs share their checks of the id, the member and
// the node paths; each names its operation, and keeps its own checks.
func TestMemberOpSpecValidate(t *testing.T) {
	const id = "20260102T030405Z"
	replace := func(edit func(*ReplaceSpec)) func() error {
		s := &ReplaceSpec{ID: id, Member: "cp1", StaticPodDir: "/etc/kubernetes/manifests", JournalDir: "/var/lib/kubectl-etcd/replace/" + id, Endpoints: []string{"https://10.0.0.2:2379"}}
		edit(s)
		return s.Validate
	}
	recover := func(edit func(*RecoverSpec)) func() error {
		s := &RecoverSpec{ID: id, Member: "cp1", StaticPodDir: "/etc/kubernetes/manifests", JournalDir: "/var/lib/kubectl-etcd/recover/" + id,
			Expect: Survey{MemberID: "a1", WAL: &WALState{}}}
		edit(s)
		return s.Validate
	}
	for _, tt := range []struct {
		name, want string
		validate   func() error
	}{
		{"a valid replace", "", replace(func(*ReplaceSpec) {})},
		{"a valid recover", "", recover(func(*RecoverSpec) {})},
		{"replace: no member", "the replace spec needs an id and a member name", replace(func(s *ReplaceSpec) { s.Member = "" })},
		{"recover: id with a dot", `recover id "a.b" must be a single path element`, recover(func(s *RecoverSpec) { s.ID = "a.b" })},
		{"replace: relative static pod dir", `replace spec staticPodDir "manifests"`, replace(func(s *ReplaceSpec) { s.StaticPodDir = "manifests" })},
		{"recover: data dir /", `recover spec dataDir "/"`, recover(func(s *RecoverSpec) { s.DataDir = "/" })},
		{"replace: unclean data dir", `replace spec dataDir "/var/lib/../etcd"`, replace(func(s *ReplaceSpec) { s.DataDir = "/var/lib/../etcd" })},
		{"recover: journal in the static pod dir", "inside the static pod dir", recover(func(s *RecoverSpec) { s.JournalDir = "/etc/kubernetes/manifests/" + id })},
		{"replace: journal not named after the id", "must end in the replace id", replace(func(s *ReplaceSpec) { s.JournalDir = "/var/lib/kubectl-etcd/replace/other" })},
		{"replace: no endpoint", "names no other member", replace(func(s *ReplaceSpec) { s.Endpoints = nil })},
		{"recover: no survey", "no survey of the member", recover(func(s *RecoverSpec) { s.Expect.WAL = nil })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
