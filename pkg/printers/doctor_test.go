package printers

import (
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
)

var checkReport = &doctor.Report{ClusterID: "f9f44c4ba0e96dd8", Results: []doctor.Result{
	{Area: "topology", Check: "member-count", Severity: doctor.OK, Found: "3 voting members: tolerates 1 failure(s)"},
	{Area: "topology", Check: "learners", Severity: doctor.OK, Found: "no learner left unpromoted"},
	{Area: "versions", Check: "minimum", Member: "hc-cp1", Severity: doctor.OK, Found: "etcd 3.6.8"},
	{Area: "versions", Check: "minimum", Member: "hc-cp2", Severity: doctor.OK, Found: "etcd 3.6.8"},
	{Area: "versions", Check: "minimum", Member: "hc-cp3", Severity: doctor.Fail, Found: "etcd 3.5.4", Fix: "upgrade to 3.5.6 or later"},
	{Area: "security", Check: "client-tls", Member: "hc-cp1", Severity: doctor.Fail, Found: "--listen-client-urls has plain-http http://10.250.1.11:2379: anyone on the network reads and writes every key", Fix: "use https in --listen-client-urls with --cert-file/--key-file"},
	{Area: "security", Check: "cert-expiry", Member: "hc-cp2", Severity: doctor.Warn, Found: "peer certificate /etc/kubernetes/pki/etcd/peer.crt expires in 20 days (2026-12-21)", Fix: "renew it (kubeadm: kubeadm certs renew etcd-peer, then restart etcd)"},
	{Area: "security", Check: "data-dir", Member: "hc-cp3", Severity: doctor.NotChecked, Found: "not checked: node hc-cp3 is NotReady"},
	{Area: "performance", Check: "wal-fsync", Member: "hc-cp1", Severity: doctor.OK, Found: "WAL fsync p99 3.9ms, p50 1.1ms (312 samples in the window)"},
}, Summary: doctor.Summary{OK: 5, Warn: 1, Fail: 2, NotChecked: 1}}

var metricsRows = []metrics.Metrics{
	{Member: "hc-cp1", Node: "hc-cp1", Version: "3.6.8", WindowText: "10s", HasLeader: true, IsLeader: true, LeaderChanges: 2, LeaderChangesInWindow: 1,
		SlowApplies: 4, ProposalsFailed: 1, ProposalsPending: 0,
		WALFsync:      metrics.Latency{P50: 0.0011, P99: 0.0039, Samples: 312},
		BackendCommit: metrics.Latency{P50: 0.002, P99: 0.0081, Samples: 120},
		PeerRoundTrip: []metrics.PeerLatency{{To: "2d2b4e1f3c7a9b10", Latency: metrics.Latency{P50: 0.0004, P99: 0.0012, Samples: 5}}, {To: "c6a1ef15ef73e52b", Latency: metrics.Latency{P99: 0.0031, Samples: 5}}},
		DBSize:        20 << 20, DBSizeInUse: 12 << 20, Quota: 2 << 30, StartTime: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
	{Member: "hc-cp2", Node: "hc-cp2", WindowText: "10s", Error: "port-forward to member hc-cp2 port 2381: pod is not running"},
}
