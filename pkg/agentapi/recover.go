package agentapi

import (
	"fmt"
	"path"
	"time"
)

// RecoverOperation is the journal's Operation for the quorum-loss
// recovery of the most advanced survivor (the others rejoin by replace).
const RecoverOperation = "recover"

// SurveyKind marks a survey's JSON, so that a stray file is refused.
const SurveyKind = "kubectl-etcd.io/survey"

// RecoveredAnnotation, on etcd's pod, names the recovery that wrote its
// manifest (with "-forced" while it runs with --force-new-cluster).
const RecoveredAnnotation = "kubectl-etcd.io/recovered"

// Recover step names that other code looks for.
const (
	StepForceNewCluster = "start etcd with --force-new-cluster"
)

// Survey is one node's etcd as the agent read it offline, from its
// manifest, its WAL and its database, for the choice of the survivor a
// quorum-loss recovery starts from. It holds no key or value.
type Survey struct {
	Kind      string    `json:"kind"`
	Node      string    `json:"node"`
	Taken     time.Time `json:"taken"`
	Member    string    `json:"member"`
	Image     string    `json:"image,omitempty"`
	DataDir   string    `json:"dataDir"`
	PeerURLs  []string  `json:"peerURLs"`
	ClientURL string    `json:"clientURL,omitempty"`
	// MemberID and ClusterID (hex) are the WAL's.
	MemberID  string `json:"memberID,omitempty"`
	ClusterID string `json:"clusterID,omitempty"`
	// EtcdRunning: etcd's ports answer. Healthy: its /health said true,
	// which it says only with a quorum.
	EtcdRunning bool   `json:"etcdRunning"`
	Healthy     bool   `json:"healthy"`
	HealthError string `json:"healthError,omitempty"`
	// NoData says why there is nothing to rank (no member/ dir, no WAL).
	NoData  string        `json:"noData,omitempty"`
	WAL     *WALState     `json:"wal,omitempty"`
	Backend *BackendState `json:"backend,omitempty"`
	// Members is the membership the database holds.
	Members []SurveyMember `json:"members,omitempty"`
}

// WALState is what a member's WAL says: its last hard state (term, vote
// and the commit index it knew) and its last entry.
type WALState struct {
	Files         int    `json:"files"`
	Term          uint64 `json:"term"`
	Vote          string `json:"vote,omitempty"`
	Commit        uint64 `json:"commit"`
	LastIndex     uint64 `json:"lastIndex"`
	LastTerm      uint64 `json:"lastTerm"`
	SnapshotIndex uint64 `json:"snapshotIndex"`
	// TornTail: the last record was cut short (a crash while writing),
	// which etcd repairs by dropping it.
	TornTail bool `json:"tornTail,omitempty"`
}

// BackendState is what a member's database says (From "db"), or, while
// etcd runs and holds it, its metrics (From "metrics").
type BackendState struct {
	From            string `json:"from"`
	ConsistentIndex uint64 `json:"consistentIndex"`
	Term            uint64 `json:"term,omitempty"`
	Revision        int64  `json:"revision"`
	CompactRevision int64  `json:"compactRevision,omitempty"`
	SizeBytes       int64  `json:"sizeBytes,omitempty"`
	Error           string `json:"error,omitempty"`
}

// SurveyMember is a member as a database lists it.
type SurveyMember struct {
	ID        string   `json:"id"`
	Name      string   `json:"name,omitempty"`
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner,omitempty"`
}

// Kept is the raft index up to which a force-new-cluster start keeps this
// member's log: etcd drops the entries past the commit index it knew.
func (s *Survey) Kept() uint64 {
	if s.WAL == nil {
		return 0
	}
	k := s.WAL.Commit
	if s.Backend != nil && s.Backend.ConsistentIndex > k {
		k = s.Backend.ConsistentIndex
	}
	return k
}

// IsLearner says whether the member's own database lists it as a learner.
func (s *Survey) IsLearner() bool {
	for _, m := range s.Members {
		if m.ID == s.MemberID {
			return m.IsLearner
		}
	}
	return false
}

// RecoverSpec is the recovery of the most advanced survivor of a cluster
// that lost its quorum: etcd on this node starts once with
// --force-new-cluster, a cluster of itself with its own data, then again
// as it was. The fields after Expect are filled by the agent.
type RecoverSpec struct {
	ID           string `json:"id"`
	Node         string `json:"node"`
	Member       string `json:"member"`
	StaticPodDir string `json:"staticPodDir"`
	JournalDir   string `json:"journalDir"`
	AgentImage   string `json:"agentImage,omitempty"`
	// Expect is the survey the choice was made on: the member's and the
	// cluster's IDs must match, and its WAL must not have gone back.
	Expect Survey `json:"expect"`

	StopTimeout    Duration `json:"stopTimeout,omitempty"`
	HealthyTimeout Duration `json:"healthyTimeout,omitempty"`
	PollInterval   Duration `json:"pollInterval,omitempty"`

	DataDir    string   `json:"dataDir,omitempty"`
	EtcdAddrs  []string `json:"etcdAddrs,omitempty"`
	MetricsURL string   `json:"metricsURL,omitempty"`
}

// Validate checks the spec as the plugin wrote it.
func (s *RecoverSpec) Validate() error {
	if s.StopTimeout == 0 {
		s.StopTimeout = Duration(2 * time.Minute)
	}
	if s.HealthyTimeout == 0 {
		s.HealthyTimeout = Duration(5 * time.Minute)
	}
	if s.PollInterval == 0 {
		s.PollInterval = Duration(time.Second)
	}
	if err := validateMemberOp(RecoverOperation, s.ID, s.Member, s.StaticPodDir, s.JournalDir, s.DataDir); err != nil {
		return err
	}
	if s.Expect.MemberID == "" || s.Expect.WAL == nil {
		return fmt.Errorf("the recover spec has no survey of the member to start from: survey its node first")
	}
	return nil
}

// Pod is what the agent's static pod needs of the spec.
func (s *RecoverSpec) Pod() AgentPodSpec {
	return AgentPodSpec{Operation: RecoverOperation, ID: s.ID, StaticPodDir: s.StaticPodDir, AgentImage: s.AgentImage}
}

// BeforeRecoverDataDir is where a recovery keeps a copy of the survivor's
// data as it was before --force-new-cluster rewrote its membership.
func BeforeRecoverDataDir(dataDir, id string) string {
	return path.Join(dataDir, "member.before-recover-"+id)
}
