package doctor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// statusDialer opens clients that answer with the member's status.
type statusDialer map[string]*etcd.Status

func (d statusDialer) Name() string                                      { return "fake" }
func (d statusDialer) Prepare(context.Context, []discovery.Member) error { return nil }
func (d statusDialer) Client(_ context.Context, m discovery.Member) (etcd.Client, error) {
	st, ok := d[m.Name]
	if !ok {
		return nil, errors.New("no such member")
	}
	return statusClient{d: d, st: st}, nil
}

type statusClient struct {
	etcd.Client // what the checks do not call
	d           statusDialer
	st          *etcd.Status
}

func (c statusClient) MemberList(context.Context) (uint64, []etcd.MemberInfo, error) {
	var out []etcd.MemberInfo
	for name, st := range c.d {
		out = append(out, etcd.MemberInfo{ID: st.MemberID, Name: name, IsLearner: st.IsLearner})
	}
	return c.st.ClusterID, out, nil
}

func (c statusClient) Status(context.Context) (*etcd.Status, error) { return c.st, nil }
func (c statusClient) StatusAll(context.Context) ([]etcd.EndpointStatus, error) {
	return nil, &etcd.UnsupportedError{Transport: "fake", Op: "status-all"}
}
func (c statusClient) AlarmList(context.Context) ([]etcd.Alarm, error) {
	return nil, nil
}

func (c statusClient) HashKV(context.Context, int64) (*etcd.KVHash, error) {
	return nil, errors.New("not faked")
}
func (c statusClient) Close() error { return nil }

// readyzGetter records the paths asked of each member and answers as
// etcd does: a learner fails its non_learner check unless excluded.
type readyzGetter struct {
	learners map[string]bool
	mu       sync.Mutex
	asked    map[string][]string
}

func (g *readyzGetter) Get(_ context.Context, m discovery.Member, path string) (*etcd.HTTPResponse, error) {
	g.mu.Lock()
	g.asked[m.Name] = append(g.asked[m.Name], path)
	g.mu.Unlock()
	if g.learners[m.Name] && !strings.Contains(path, "exclude=non_learner") {
		return &etcd.HTTPResponse{Code: 503, Body: []byte("[+]serializable_read ok\n[-]non_learner failed: not supported for learner\nhealth check failed\n")}, nil
	}
	return &etcd.HTTPResponse{Code: 200, Body: []byte("[+]serializable_read ok\nok\n")}, nil
}

// TestReadyzPathThroughGather: Gather asks a learner's /readyz to leave
// out the non_learner check, which a learner fails by design, and asks
// nothing of a version without /readyz.
func TestReadyzPathThroughGather(t *testing.T) {
	tests := []struct {
		name     string
		version  string
		learner  bool
		wantPath []string
		want     doctor.Severity
	}{
		{"a voter", "3.6.8", false, []string{"/readyz?verbose"}, doctor.OK},
		{"a learner", "3.6.8", true, []string{"/readyz?verbose&exclude=non_learner"}, doctor.OK},
		{"a 3.5 learner", "3.5.19", true, []string{"/readyz?verbose&exclude=non_learner"}, doctor.OK},
		{"no readyz before 3.5.11", "3.5.10", true, nil, doctor.NotChecked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := statusDialer{
				"cp1": {ClusterID: 0xc1, MemberID: 1, Leader: 1, Version: "3.6.8"},
				"cp2": {ClusterID: 0xc1, MemberID: 2, Leader: 1, Version: tc.version, IsLearner: tc.learner},
			}
			g := &readyzGetter{learners: map[string]bool{"cp2": tc.learner}, asked: map[string][]string{}}
			pods := []discovery.Member{{Name: "cp1", Pod: "etcd-cp1", Node: "cp1"}, {Name: "cp2", Pod: "etcd-cp2", Node: "cp2"}}
			rep, err := doctor.Check(context.Background(), doctor.Sources{Clients: d, HTTP: g}, pods,
				doctor.Config{Selection: doctor.Selection{Only: []string{"consistency.readyz"}}})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(g.asked["cp2"], " "); got != strings.Join(tc.wantPath, " ") {
				t.Errorf("cp2 was asked %q, want %q", got, tc.wantPath)
			}
			if got := strings.Join(g.asked["cp1"], " "); got != "/readyz?verbose" {
				t.Errorf("cp1 was asked %q", got)
			}
			rs := find(rep, "consistency.readyz", "cp2")
			if len(rs) != 1 || rs[0].Severity != tc.want {
				t.Errorf("cp2: %+v, want %s", rs, tc.want)
			}
		})
	}
}
