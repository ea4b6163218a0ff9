package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
)

// MemberView is a member-list row joined with the pod that runs it.
type MemberView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Node       string   `json:"node,omitempty"`
	Pod        string   `json:"pod,omitempty"`
	Status     string   `json:"status"` // started or unstarted
	IsLearner  bool     `json:"isLearner"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// MemberListView is the answer of `kubectl etcd members`.
type MemberListView struct {
	ClusterID string       `json:"clusterID"`
	Members   []MemberView `json:"members"`
}

// HealthView is one member's health.
type HealthView struct {
	Name     string        `json:"name"`
	Node     string        `json:"node,omitempty"`
	Pod      string        `json:"pod,omitempty"`
	Endpoint string        `json:"endpoint,omitempty"`
	Healthy  bool          `json:"healthy"`
	Took     time.Duration `json:"-"`
	TookText string        `json:"took"`
	Error    string        `json:"error,omitempty"`
}

// StatusView is one member's status.
type StatusView struct {
	Name             string   `json:"name"`
	Node             string   `json:"node,omitempty"`
	Pod              string   `json:"pod,omitempty"`
	ID               string   `json:"id,omitempty"`
	Version          string   `json:"version,omitempty"`
	StorageVersion   string   `json:"storageVersion,omitempty"`
	DBSize           int64    `json:"dbSize"`
	DBSizeInUse      int64    `json:"dbSizeInUse"`
	Quota            int64    `json:"quota"`
	IsLeader         bool     `json:"isLeader"`
	Leader           string   `json:"leader,omitempty"`
	IsLearner        bool     `json:"isLearner"`
	RaftTerm         uint64   `json:"raftTerm"`
	RaftIndex        uint64   `json:"raftIndex"`
	RaftAppliedIndex uint64   `json:"raftAppliedIndex"`
	Revision         int64    `json:"revision"`
	Alarms           []string `json:"alarms,omitempty"`
	Errors           []string `json:"errors,omitempty"`
	Error            string   `json:"error,omitempty"`
}

// StatusListView is the answer of `kubectl etcd status`.
type StatusListView struct {
	ClusterID string       `json:"clusterID,omitempty"`
	Members   []StatusView `json:"members"`
	// List is the member list read along the way (nil if it failed),
	// for callers that also need peer URLs.
	List *MemberListView `json:"-"`
}

// ErrSomeFailed is returned (wrapped) when some members could not answer.
// The views are still complete for the others.
var ErrSomeFailed = errors.New("some members failed")

// session dials members in parallel and keeps the conns.
type session struct {
	members []discovery.Member
	conns   []Client
	errs    []error
}

func dialAll(ctx context.Context, t Transport, members []discovery.Member) *session {
	s := &session{members: members, conns: make([]Client, len(members)), errs: make([]error, len(members))}
	_ = t.Prepare(ctx, members) // a failure shows in each member's row
	par.Each(len(members), func(i int) {
		s.conns[i], s.errs[i] = t.Client(ctx, members[i])
		s.errs[i] = withHint(members[i], s.errs[i])
	})
	return s
}

// withHint adds what to look at next to a member's error.
func withHint(m discovery.Member, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case hint.Of(err) != "":
		return err // the layer that knew the cause said what to do
	case m.NodeReady != nil && !*m.NodeReady:
		return hint.With(err, "node %s is NotReady: kubectl describe node %s", m.Node, m.Node)
	// gRPC carries TLS alerts and dial errors as text only.
	case strings.Contains(msg, "bad certificate") || strings.Contains(msg, "certificate required") || strings.Contains(msg, "unknown certificate authority"):
		return hint.Permanent(err, "the member rejected the client certificate named by the pod spec; check --cert-file/--trusted-ca-file in %s", m.Pod)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "connection refused"):
		return hint.With(err, "member unreachable: kubectl -n %s logs %s", m.Namespace, m.Pod)
	}
	return err
}

func (s *session) close() {
	for _, c := range s.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// first returns the first usable conn, preferring running pods on Ready nodes.
func (s *session) first() Client {
	for i, c := range s.conns {
		if c != nil && s.errs[i] == nil {
			return c
		}
	}
	return nil
}

var errNoConn = errors.New("no member could be reached")

// ListMembers asks members, one after the other, for the member list until
// one answers, and joins it with the pods.
func ListMembers(ctx context.Context, t Transport, members []discovery.Member) (*MemberListView, error) {
	_ = t.Prepare(ctx, members) // a failure shows in each member's row
	var errs []error
	for _, m := range members {
		c, err := t.Client(ctx, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		id, list, err := c.MemberList(ctx)
		_ = c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("member %s: %w", m.Name, err))
			continue
		}
		return memberListView(id, list, members), nil
	}
	return nil, fmt.Errorf("no member answered the member list: %w", errors.Join(errs...))
}

func memberListView(id uint64, list []MemberInfo, pods []discovery.Member) *MemberListView {
	v := &MemberListView{ClusterID: HexID(id), Members: []MemberView{}}
	for _, mi := range list {
		row := MemberView{
			ID: HexID(mi.ID), Name: mi.Name, Status: "started", IsLearner: mi.IsLearner,
			PeerURLs: nonNil(mi.PeerURLs), ClientURLs: nonNil(mi.ClientURLs),
		}
		if !mi.Started() {
			row.Status = "unstarted"
		}
		if p := podFor(mi, pods); p != nil {
			row.Node, row.Pod = p.Node, p.Pod
		}
		v.Members = append(v.Members, row)
	}
	return v
}

// podFor matches a listed member to its pod by name, then by peer URL
// (unstarted members have no name yet).
func podFor(mi MemberInfo, pods []discovery.Member) *discovery.Member {
	for i := range pods {
		if mi.Name != "" && pods[i].Name == mi.Name {
			return &pods[i]
		}
	}
	for i := range pods {
		for _, u := range pods[i].InitialAdvertisePeerURLs {
			for _, pu := range mi.PeerURLs {
				if u == pu {
					return &pods[i]
				}
			}
		}
	}
	return nil
}

// CheckHealth checks every member in parallel. Members that are in the
// member list but have no pod are reported unhealthy.
func CheckHealth(ctx context.Context, t Transport, members []discovery.Member) ([]HealthView, error) {
	s := dialAll(ctx, t, members)
	defer s.close()
	out := make([]HealthView, len(members))
	var list []MemberInfo
	var listErr error
	// The member list, to report members without a pod, is asked for at
	// the same time as the checks.
	par.Each(len(members)+1, func(i int) {
		if i == len(members) {
			listErr = errNoConn
			if c := s.first(); c != nil {
				_, list, listErr = c.MemberList(ctx)
			}
			return
		}
		m := members[i]
		v := HealthView{Name: m.Name, Node: m.Node, Pod: m.Pod, Endpoint: m.LocalClientURL()}
		err := s.errs[i]
		if err == nil {
			v.Took, err = s.conns[i].Health(ctx)
			err = withHint(m, err)
		}
		v.Healthy = err == nil
		if err != nil {
			v.Error = err.Error()
		}
		v.TookText = v.Took.Round(time.Microsecond).String()
		out[i] = v
	})
	if listErr == nil {
		for _, mi := range list {
			if podFor(mi, members) == nil {
				out = append(out, HealthView{Name: memberLabel(mi), Error: "no etcd pod found for this member", TookText: "0s"})
			}
		}
	}
	return out, failures(len(out), func(i int) bool { return !out[i].Healthy })
}

// CollectStatus asks every member for its status in parallel, and one of
// them for the member list and the alarms.
func CollectStatus(ctx context.Context, t Transport, members []discovery.Member) (*StatusListView, error) {
	s := dialAll(ctx, t, members)
	defer s.close()
	statuses := make([]*Status, len(members))
	errs := append([]error{}, s.errs...)
	var list []MemberInfo
	var listID uint64
	var alarms []Alarm
	var listErr, alarmErr error
	// One round: every member's status, the member list and the alarms
	// side by side (over exec each is an etcdctl run of its own).
	par.Each(len(members)+2, func(i int) {
		switch c := s.first(); {
		case i < len(members):
			if errs[i] == nil {
				statuses[i], errs[i] = s.conns[i].Status(ctx)
				errs[i] = withHint(members[i], errs[i])
			}
		case c == nil:
		case i == len(members):
			listID, list, listErr = c.MemberList(ctx)
		default:
			alarms, alarmErr = c.AlarmList(ctx)
		}
	})
	if listErr == nil {
		listErr = alarmErr
	}
	v := &StatusListView{Members: []StatusView{}}
	for i, m := range members {
		row := StatusView{Name: m.Name, Node: m.Node, Pod: m.Pod, Quota: m.QuotaBackendBytes}
		if errs[i] != nil {
			row.Error = errs[i].Error()
		} else {
			fillStatus(&row, statuses[i], alarms)
			if v.ClusterID == "" {
				v.ClusterID = HexID(statuses[i].ClusterID)
			}
		}
		v.Members = append(v.Members, row)
	}
	if listErr == nil && list != nil {
		v.List = memberListView(listID, list, members)
	}
	for _, mi := range list {
		if podFor(mi, members) == nil {
			v.Members = append(v.Members, StatusView{Name: memberLabel(mi), ID: HexID(mi.ID), Error: "no etcd pod found for this member"})
		}
	}
	if listErr != nil {
		return v, fmt.Errorf("%w: reading the member list and alarms: %v", ErrSomeFailed, listErr)
	}
	return v, failures(len(v.Members), func(i int) bool { return v.Members[i].Error != "" })
}

func fillStatus(row *StatusView, st *Status, alarms []Alarm) {
	row.ID = HexID(st.MemberID)
	row.Version, row.StorageVersion = st.Version, st.StorageVersion
	row.DBSize, row.DBSizeInUse = st.DBSize, st.DBSizeInUse
	if st.DBSizeQuota > 0 {
		row.Quota = st.DBSizeQuota
	}
	row.IsLeader = st.Leader != 0 && st.Leader == st.MemberID
	if st.Leader != 0 {
		row.Leader = HexID(st.Leader)
	}
	row.IsLearner = st.IsLearner
	row.RaftTerm, row.RaftIndex, row.RaftAppliedIndex = st.RaftTerm, st.RaftIndex, st.RaftAppliedIndex
	row.Revision = st.Revision
	row.Errors = st.Errors
	for _, a := range alarms {
		if a.MemberID == st.MemberID {
			row.Alarms = append(row.Alarms, a.Type)
		}
	}
}

func memberLabel(mi MemberInfo) string {
	if mi.Name != "" {
		return mi.Name
	}
	return "(unstarted " + HexID(mi.ID) + ")"
}

func failures(n int, failed func(int) bool) error {
	bad := 0
	for i := 0; i < n; i++ {
		if failed(i) {
			bad++
		}
	}
	if bad == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d", ErrSomeFailed, bad, n)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
