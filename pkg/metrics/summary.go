package metrics

import (
	"time"
)

// The metrics that check and `kubectl etcd metrics` read.
const (
	mWALFsync         = "etcd_disk_wal_fsync_duration_seconds"
	mBackendCommit    = "etcd_disk_backend_commit_duration_seconds"
	mPeerRTT          = "etcd_network_peer_round_trip_time_seconds"
	HasLeaderName     = "etcd_server_has_leader"
	mIsLeader         = "etcd_server_is_leader"
	mLeaderChanges    = "etcd_server_leader_changes_seen_total"
	mSlowApplies      = "etcd_server_slow_apply_total"
	mProposalsFailed  = "etcd_server_proposals_failed_total"
	mProposalsPending = "etcd_server_proposals_pending"
	mServerVersion    = "etcd_server_version"
	mDBSize           = "etcd_mvcc_db_total_size_in_bytes"
	mDBSizeInUse      = "etcd_mvcc_db_total_size_in_use_in_bytes"
	mQuota            = "etcd_server_quota_backend_bytes"
	mStartTime        = "process_start_time_seconds"
)

// Latency is a histogram's p50 and p99, in seconds.
type Latency struct {
	P50 float64 `json:"p50Seconds"`
	P99 float64 `json:"p99Seconds"`
	// Samples is how many observations the quantiles come from.
	Samples int64 `json:"samples"`
	// SinceStart is true when they cover the member's whole life, not
	// the window: the window saw no observation, or there was none.
	SinceStart bool `json:"sinceStart,omitempty"`
}

// PeerLatency is the round trip to one peer.
type PeerLatency struct {
	To string `json:"to"`
	Latency
}

// Metrics is one member's numbers, from two scrapes Window apart (or
// one, with no window).
type Metrics struct {
	Member     string `json:"member"`
	Node       string `json:"node,omitempty"`
	Version    string `json:"version,omitempty"`
	WindowText string `json:"window"`
	HasLeader  bool   `json:"hasLeader"`
	IsLeader   bool   `json:"isLeader"`
	// Counters since the member started, and their growth in the window.
	LeaderChanges           int64         `json:"leaderChanges"`
	LeaderChangesInWindow   int64         `json:"leaderChangesInWindow"`
	SlowApplies             int64         `json:"slowApplies"`
	SlowAppliesInWindow     int64         `json:"slowAppliesInWindow"`
	ProposalsFailed         int64         `json:"proposalsFailed"`
	ProposalsFailedInWindow int64         `json:"proposalsFailedInWindow"`
	ProposalsPending        int64         `json:"proposalsPending"`
	WALFsync                Latency       `json:"walFsync"`
	BackendCommit           Latency       `json:"backendCommit"`
	PeerRoundTrip           []PeerLatency `json:"peerRoundTrip,omitempty"`
	DBSize                  int64         `json:"dbSize"`
	DBSizeInUse             int64         `json:"dbSizeInUse"`
	Quota                   int64         `json:"quota"`
	// StartTime is when the member's process started (zero if unknown).
	StartTime time.Time `json:"startTime,omitempty"`
	Error     string    `json:"error,omitempty"`

	window time.Duration
	// HasLeaderSeen: the scrape had etcd_server_has_leader.
	HasLeaderSeen bool `json:"-"`
}

// Summarize turns scrapes into the numbers people read. With first nil
// (no window) everything is since the member started.
func Summarize(first, last *Scrape) Metrics {
	var m Metrics
	if first != nil {
		m.window = last.At.Sub(first.At)
		m.WindowText = m.window.Round(time.Millisecond).String()
	} else {
		m.WindowText = "since start"
	}
	m.Version = last.Label(mServerVersion, "server_version")
	m.HasLeader, m.HasLeaderSeen = gauge(last, HasLeaderName) == 1, last.Has(HasLeaderName)
	m.IsLeader = gauge(last, mIsLeader) == 1
	m.LeaderChanges, m.LeaderChangesInWindow = counter(first, last, mLeaderChanges)
	m.SlowApplies, m.SlowAppliesInWindow = counter(first, last, mSlowApplies)
	m.ProposalsFailed, m.ProposalsFailedInWindow = counter(first, last, mProposalsFailed)
	m.ProposalsPending = int64(gauge(last, mProposalsPending))
	m.WALFsync = latency(first, last, mWALFsync, nil)
	m.BackendCommit = latency(first, last, mBackendCommit, nil)
	for _, to := range last.LabelValues(mPeerRTT, "To") {
		keep := func(l map[string]string) bool { return l["To"] == to }
		m.PeerRoundTrip = append(m.PeerRoundTrip, PeerLatency{To: to, Latency: latency(first, last, mPeerRTT, keep)})
	}
	m.DBSize = int64(gauge(last, mDBSize))
	m.DBSizeInUse = int64(gauge(last, mDBSizeInUse))
	m.Quota = int64(gauge(last, mQuota))
	if s := gauge(last, mStartTime); s > 0 {
		m.StartTime = time.Unix(int64(s), 0).UTC()
	}
	return m
}

// Window is the time between the two scrapes (0: since start).
func (m Metrics) Window() time.Duration { return m.window }

func gauge(s *Scrape, name string) float64 {
	v, _ := s.Value(name)
	return v
}

// counter is a counter's value and its growth since first (0 without
// first, or after a restart).
func counter(first, last *Scrape, name string) (total, delta int64) {
	total = int64(gauge(last, name))
	if first != nil {
		if d := total - int64(gauge(first, name)); d > 0 {
			delta = d
		}
	}
	return total, delta
}

// latency is the p50 and p99 of what the window observed, or of the
// member's life when the window observed nothing.
func latency(first, last *Scrape, name string, keep func(map[string]string) bool) Latency {
	h := last.Histogram(name, keep)
	whole := first == nil
	if !whole {
		d := h.Sub(first.Histogram(name, keep))
		if d.Count > 0 {
			h = d
		} else {
			whole = true
		}
	}
	l := Latency{Samples: int64(h.Count), SinceStart: whole}
	l.P50, _ = h.Quantile(0.5)
	l.P99, _ = h.Quantile(0.99)
	return l
}
