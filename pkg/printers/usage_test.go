package printers

import (
	"bytes"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
)

var usageLive = &keyspace.UsageReport{Source: "member", Member: &cluster.MemberRef{Name: "hc-cp2", ID: "2d2b4e1f3c7a9b10"}, Role: "follower", Serializable: true,
	Revision: 987654, DBSize: 1900 << 20, DBSizeInUse: 700 << 20, DBSizeQuota: 2 << 30, History: keyspace.HistoryVersions,
	Total: keyspace.ResourceUsage{Keys: 201234, Bytes: 412 << 20, Revisions: 250000, LeasedKeys: 80000},
	Resources: []keyspace.ResourceUsage{
		{Prefix: "/registry/events/", Resource: "events", Keys: 80000, Bytes: 90 << 20, Revisions: 95000, LeasedKeys: 80000},
		{Prefix: "/registry/pods/", Resource: "pods", Keys: 30000, Bytes: 150 << 20, Revisions: 60000},
		{Prefix: "/registry/apiregistration.k8s.io/apiservices/", Resource: "apiservices.apiregistration.k8s.io", Keys: 40, Bytes: 60 << 10, Revisions: 41},
	},
	Rest:    &keyspace.ResourceUsage{Keys: 91194, Bytes: 172 << 20, Revisions: 94959},
	Churn:   []keyspace.ResourceUsage{{Prefix: "/registry/events/", Resource: "events", Keys: 80000, Bytes: 90 << 20, Revisions: 95000, LeasedKeys: 80000}, {Prefix: "/registry/leases/", Resource: "leases", Keys: 60, Bytes: 30 << 10, Revisions: 3000000}},
	TopKeys: []keyspace.KeyHistory{{Key: "/registry/leases/kube-node-lease/hc-w1", Revisions: 120000, Bytes: 400}, {Key: "/registry/masterleases/10.0.0.1", Revisions: 9000, Bytes: 150}},
	Leases:  14,
}

var usageSnapshot = &keyspace.UsageReport{Source: "snapshot", File: "etcd-20260101.db.age", Encrypted: true, Revision: 987654, CompactRevision: 980000, DBSize: 700 << 20, History: keyspace.HistoryStored,
	Total: keyspace.ResourceUsage{Keys: 1200, Bytes: 8 << 20, Revisions: 9000, HistoryBytes: 600 << 20, DeletedKeys: 300},
	Resources: []keyspace.ResourceUsage{
		{Prefix: "/registry/configmaps/", Resource: "configmaps", Namespace: "ci", Keys: 100, Bytes: 5 << 20, Revisions: 6000, HistoryBytes: 590 << 20, DeletedKeys: 20},
		{Prefix: "/registry/nodes/", Resource: "nodes", Keys: 3, Bytes: 90 << 10, Revisions: 30, HistoryBytes: 900 << 10},
	},
	Churn:   []keyspace.ResourceUsage{{Prefix: "/registry/events/", Resource: "events", Keys: 0, DeletedKeys: 280, Revisions: 560, HistoryBytes: 300 << 10}, {Prefix: "/registry/leases/", Resource: "leases"}},
	TopKeys: []keyspace.KeyHistory{{Key: "/registry/configmaps/ci/build-cache", Revisions: 5800, Bytes: 1 << 20, HistoryBytes: 580 << 20}, {Key: "/registry/events/ci/x.1", Revisions: 2, HistoryBytes: 1200, Deleted: true}},
	Leases:  3,
}

func TestPrintUsage(t *testing.T) {
	for name, r := range map[string]*keyspace.UsageReport{"usage-live": usageLive, "usage-snapshot": usageSnapshot, "usage-empty": {Source: "snapshot", File: "empty.db", History: keyspace.HistoryStored}} {
		for _, format := range []string{Table, Wide, JSON, YAML} {
			t.Run(name+"-"+format, func(t *testing.T) {
				var b bytes.Buffer
				if err := PrintUsage(&b, format, r); err != nil {
					t.Fatal(err)
				}
				golden.Assert(t, name+"-"+format, b.Bytes())
			})
		}
	}
}
