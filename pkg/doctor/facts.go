package doctor

import (
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodefacts"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

// Facts are what the rules judge. Gather fills them from the cluster;
// tests craft them.
type Facts struct {
	Now       time.Time
	ClusterID uint64
	// List and Alarms are the member and alarm lists; ListErr is why
	// they could not be read.
	List    []etcd.MemberInfo
	Alarms  []etcd.Alarm
	ListErr error
	// Members has one entry per etcd pod.
	Members []*MemberFacts
	// Hashes is the hashkv of every member at one revision, or why not.
	HashRevision int64
	HashErr      error
	// Backup is what --backup-dir holds; nil without the flag.
	Backup *BackupFacts
	// Schedules are the scheduled backups; nil when not read.
	Schedules *ScheduleFacts
	// Encryption is what the API servers encrypt with and how the values
	// are stored; nil when not read.
	Encryption *EncryptionFacts
}

// MemberFacts is what one member's pod, status, endpoints and node said.
type MemberFacts struct {
	Pod discovery.Member
	// Status is read before the window and Later after it.
	Status, Later *etcd.Status
	// Elapsed is the time between Status and Later.
	Elapsed  time.Duration
	statusAt time.Time
	Err      error
	Hash     *etcd.KVHash
	HashErr  error
	// Ready is the /readyz?verbose answer (nil when not asked).
	Ready    *etcd.HTTPResponse
	ReadyErr error
	Metrics  *metrics.Metrics
	// MetricsErr is why the metrics could not be read.
	MetricsErr error
	// Node is what the member's node said about the certificates and
	// the data dir; NodeErr why it could not be read.
	Node    *nodefacts.NodeReport
	NodeErr error
	// Elections is what its log of the last hour says of the leader
	// changes; ElectionsErr is why the log could not be read.
	Elections    *LogElections
	ElectionsErr error
}

// Name is the member's name for the report.
func (m *MemberFacts) Name() string { return m.Pod.Name }

// BackupFacts is the newest snapshot in --backup-dir.
type BackupFacts struct {
	Dir string
	// Newest is "" when the directory holds no snapshot.
	Newest string
	Time   time.Time
	// Verified is nil when the snapshot checked out, else why not;
	// Unverifiable says why it could not be checked (an encrypted file
	// with no metadata).
	VerifyErr    error
	Unverifiable string
	Err          error
}

// ScheduleFacts are the schedules installed in the cluster, with the
// record of their runs, or why they could not be listed.
type ScheduleFacts struct {
	List []schedule.Status
	Err  error
}

func (f *Facts) leader() *MemberFacts {
	for _, m := range f.Members {
		if st := m.Status; st != nil && st.Leader != 0 && st.Leader == st.MemberID {
			return m
		}
	}
	return nil
}

func (f *Facts) reachable() []*MemberFacts {
	var out []*MemberFacts
	for _, m := range f.Members {
		if m.Err == nil && m.Status != nil {
			out = append(out, m)
		}
	}
	return out
}
