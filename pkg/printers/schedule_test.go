package printers

import (
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

var scheduleNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

var schedules = []schedule.Status{
	{Name: "hourly", Namespace: "etcd-backups", Schedule: "@hourly", Destination: "s3://backups/etcd/prod/", Retention: "keep the last 14d", Image: "ghcr.io/kubectl-etcd/kubectl-etcd:v0.4.0",
		Record: schedule.Record{LastAttempt: scheduleNow.Add(-20 * time.Minute), LastTook: "3.1s",
			LastError:   "snapshot not kept: S3 at https://minio.example:9000, bucket backups: AccessDenied: the credentials in the schedule's Secret are refused; check them",
			LastSuccess: scheduleNow.Add(-80 * time.Minute), LastFile: "hourly-20261207T104000Z.db.zst.age", LastSize: 2 << 30, LastRevision: 987654, LastSHA256: "ab12",
			Kept: []schedule.Object{{Name: "hourly-20261207T104000Z.db.zst.age", Size: 1 << 29}, {Name: "hourly-20261207T094000Z.db.zst.age", Size: 1 << 29}}}},
	{Name: "nightly", Namespace: "kube-system", Schedule: "0 2 * * *", Destination: "node:/var/lib/etcd-backups", Retention: "keep the newest 7", Image: "ghcr.io/kubectl-etcd/kubectl-etcd:v0.4.0",
		Record: schedule.Record{LastAttempt: scheduleNow.Add(-10 * time.Hour), LastTook: "1.2s", LastSuccess: scheduleNow.Add(-10 * time.Hour),
			LastFile: "nightly-20261207T020000Z.db.zst.age", LastSize: 21 << 20, LastRevision: 4242, LastSHA256: "cd34",
			Kept: []schedule.Object{{Name: "nightly-20261207T020000Z.db.zst.age", Size: 5 << 20}}}},
	{Name: "new", Namespace: "kube-system", Schedule: "30 3 * * 0", Suspended: true, Problem: "the schedule's config: unexpected end of JSON input"},
}

var backups = []schedule.Backup{
	{Name: "nightly-20261207T020000Z.db.zst.age", Schedule: "nightly", Taken: time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC), Size: 5 << 20, Node: "hc-cp1",
		Verified: &schedule.Verification{Content: true, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},
	{Name: "nightly-20261206T020000Z.db.zst.age", Schedule: "nightly", Taken: time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC), Size: 5 << 20, Node: "hc-cp2",
		Verified: &schedule.Verification{SHA256: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"}},
	{Name: "manual.db", Taken: time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC), Size: 21 << 20, Node: "hc-cp1",
		Verified: &schedule.Verification{Error: "1048576 bytes arrived of the 22020096 listed: the transfer was cut, which a read of the node's file over exec can do"}},
}
