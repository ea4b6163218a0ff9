package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
)

// The views are the answers of status, health and members, as -o json
// and -o yaml print them; the printers render their tables.

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
}

// ErrSomeFailed is returned (wrapped) when some members could not answer.
// The views are still complete for the others.
var ErrSomeFailed = errors.New("some members failed")

// Status reads the cluster as Read does and is its status view. Over
// exec one etcdctl run answers for every member; the member list is
// read only when that answer leaves a member out or names one that has
// no pod (the rows of members without a pod come from it).
func Status(ctx context.Context, t etcd.Transport, pods []discovery.Member) (*StatusListView, error) {
	c := read(ctx, t, pods, false)
	defer c.Close()
	return c.StatusView()
}

// StatusView is the status of every member, with a row for each listed
// member that has no pod; the error wraps ErrSomeFailed when a member or
// the lists could not be read.
func (c *Cluster) StatusView() (*StatusListView, error) {
	v := &StatusListView{ClusterID: HexOrEmpty(c.ClusterID), Members: []StatusView{}}
	for _, m := range c.Members {
		row := StatusView{Name: m.Pod.Name, Node: m.Pod.Node, Pod: m.Pod.Pod, Quota: m.Pod.QuotaBackendBytes}
		if m.Err != nil {
			row.Error = m.Err.Error()
		} else if m.Status != nil {
			fillStatus(&row, m.Status, c.Alarms)
		}
		v.Members = append(v.Members, row)
	}
	for _, mi := range c.Unpodded() {
		v.Members = append(v.Members, StatusView{Name: memberLabel(mi), ID: etcd.HexID(mi.ID), Error: "no etcd pod found for this member"})
	}
	if c.ListErr != nil {
		return v, fmt.Errorf("%w: reading the member list and alarms: %v", ErrSomeFailed, c.ListErr)
	}
	return v, failures(len(v.Members), func(i int) bool { return v.Members[i].Error != "" })
}

// Health checks every member as etcdctl endpoint health does. Over exec
// one etcdctl run checks them all; as in Status, each member it leaves
// out or fails is checked on its own, and only then is the member list
// read, whose members without a pod are reported unhealthy.
func Health(ctx context.Context, t etcd.Transport, pods []discovery.Member) ([]HealthView, error) {
	c := Dial(ctx, t, pods)
	defer c.Close()
	first := c.trusted()
	took := make([]time.Duration, len(c.Members))
	errs := make([]error, len(c.Members))
	listErr := errNoConn
	var all []etcd.EndpointHealth
	allErr := errNoConn
	if first != nil {
		all, allErr = first.client.HealthAll(ctx)
	}
	// As in Status, the member list only when the one answer is short.
	done := make([]bool, len(c.Members))
	if allErr != nil || !c.takeHealth(all, took, errs, done) {
		par.Each(2, func(i int) {
			switch {
			case i == 0:
				c.checkHealth(ctx, done, took, errs)
			case first != nil:
				_, c.List, listErr = first.client.MemberList(ctx)
			}
		})
	}
	out := make([]HealthView, len(c.Members))
	for i, m := range c.Members {
		v := HealthView{Name: m.Pod.Name, Node: m.Pod.Node, Pod: m.Pod.Pod, Endpoint: m.Pod.LocalClientURL(), Took: took[i], Healthy: errs[i] == nil}
		if errs[i] != nil {
			v.Error = errs[i].Error()
		}
		v.TookText = v.Took.Round(time.Microsecond).String()
		out[i] = v
	}
	if listErr == nil {
		for _, mi := range c.Unpodded() {
			out = append(out, HealthView{Name: memberLabel(mi), Error: "no etcd pod found for this member", TookText: "0s"})
		}
	}
	return out, failures(len(out), func(i int) bool { return !out[i].Healthy })
}

// takeHealth fills the rows that all, HealthAll's answer, holds
// healthy for a trusted member (see answering), and reports whether it
// was the whole answer: healthy rows for every member and no other row.
func (c *Cluster) takeHealth(all []etcd.EndpointHealth, took []time.Duration, errs []error, done []bool) bool {
	whole := true
	for _, e := range all {
		m := c.answering(e.Endpoint)
		if m == nil || e.Err != nil {
			whole = false
			continue
		}
		i := c.index(m)
		took[i], errs[i], done[i] = e.Took, nil, true
	}
	for _, d := range done {
		whole = whole && d
	}
	return whole
}

// checkHealth checks, each on its own and in parallel, the members not
// done.
func (c *Cluster) checkHealth(ctx context.Context, done []bool, took []time.Duration, errs []error) {
	par.Each(len(c.Members), func(i int) {
		m := c.Members[i]
		if done[i] {
			return
		}
		errs[i] = m.Err
		if errs[i] == nil {
			took[i], errs[i] = m.client.Health(ctx)
			errs[i] = etcd.WithHint(m.Pod, errs[i])
		}
	})
}

func (c *Cluster) index(m *Member) int {
	for i, x := range c.Members {
		if x == m {
			return i
		}
	}
	return -1
}

var errNoConn = errors.New("no member could be reached")

// MemberList is the member list that Read read, joined with the pods;
// nil if it could not be read.
func (c *Cluster) MemberList() *MemberListView {
	if c.ListErr != nil || c.List == nil {
		return nil
	}
	return memberListView(c.ClusterID, c.List, c.pods())
}

// Members asks members, one after the other, for the member list until
// one answers, and joins it with the pods.
func Members(ctx context.Context, t etcd.Transport, pods []discovery.Member) (*MemberListView, error) {
	_ = t.Prepare(ctx, pods) // a failure shows in each member's row
	var errs []error
	for _, m := range pods {
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
		return memberListView(id, list, pods), nil
	}
	return nil, fmt.Errorf("no member answered the member list: %w", errors.Join(errs...))
}

func memberListView(id uint64, list []etcd.MemberInfo, pods []discovery.Member) *MemberListView {
	v := &MemberListView{ClusterID: etcd.HexID(id), Members: []MemberView{}}
	for _, mi := range list {
		row := MemberView{
			ID: etcd.HexID(mi.ID), Name: mi.Name, Status: "started", IsLearner: mi.IsLearner,
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
func podFor(mi etcd.MemberInfo, pods []discovery.Member) *discovery.Member {
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

func fillStatus(row *StatusView, st *etcd.Status, alarms []etcd.Alarm) {
	row.ID = etcd.HexID(st.MemberID)
	row.Version, row.StorageVersion = st.Version, st.StorageVersion
	row.DBSize, row.DBSizeInUse = st.DBSize, st.DBSizeInUse
	if st.DBSizeQuota > 0 {
		row.Quota = st.DBSizeQuota
	}
	row.IsLeader = st.Leader != 0 && st.Leader == st.MemberID
	if st.Leader != 0 {
		row.Leader = etcd.HexID(st.Leader)
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

func memberLabel(mi etcd.MemberInfo) string {
	if mi.Name != "" {
		return mi.Name
	}
	return "(unstarted " + etcd.HexID(mi.ID) + ")"
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
