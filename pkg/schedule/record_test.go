package schedule

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A record survives the Lease: what With made of the runs is what
// ReadRecord reads back from the annotations.
func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	kept := []Object{{Name: FileName("nightly", at), Size: 1234}, {Name: FileName("nightly", at.Add(-24*time.Hour)), Size: 1200}}
	ok := Outcome{Time: at, File: kept[0].Name, Size: 5 << 20, SHA256: "ab12", Revision: 4242, Took: "1.5s", Kept: kept}
	failed := Outcome{Time: at.Add(time.Hour), File: FileName("nightly", at.Add(time.Hour)), Took: "3s", Error: "snapshot not kept: etcd at https://127.0.0.1:2379 does not answer"}
	retention := Outcome{Time: at.Add(2 * time.Hour), File: FileName("nightly", at.Add(2*time.Hour)), Size: 6 << 20, SHA256: "cd34", Revision: 4300, Took: "2s",
		Error: "snapshot kept, but the retention could not list node:/x: permission denied"}
	for _, tc := range []struct {
		name string
		runs []Outcome
		want Record
	}{
		{"none", nil, Record{}},
		{"a success", []Outcome{ok}, Record{LastAttempt: at, LastTook: "1.5s", LastSuccess: at, LastFile: ok.File, LastSize: 5 << 20, LastRevision: 4242, LastSHA256: "ab12", Kept: kept}},
		{"then a failure: the success stays", []Outcome{ok, failed}, Record{LastAttempt: failed.Time, LastTook: "3s", LastError: failed.Error,
			LastSuccess: at, LastFile: ok.File, LastSize: 5 << 20, LastRevision: 4242, LastSHA256: "ab12", Kept: kept}},
		{"then a kept snapshot whose retention failed", []Outcome{ok, retention}, Record{LastAttempt: retention.Time, LastTook: "2s", LastError: retention.Error,
			LastSuccess: retention.Time, LastFile: retention.File, LastSize: 6 << 20, LastRevision: 4300, LastSHA256: "cd34", Kept: kept}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			for _, o := range tc.runs {
				r = r.With(o)
			}
			a, err := r.Annotations()
			if err != nil {
				t.Fatal(err)
			}
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
			for k, v := range a {
				if v != "" {
					lease.Annotations[k] = v
				}
			}
			got, err := ReadRecord(lease)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
	bad := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "ns", Annotations: map[string]string{AnnoLastSize: "big", AnnoLastFile: "f"}}}
	if r, err := ReadRecord(bad); err == nil || !strings.Contains(err.Error(), AnnoLastSize) || r.LastFile != "f" {
		t.Errorf("a malformed record: %+v, %v; want the rest read and the bad annotation named", r, err)
	}
}

// The job records each run in the Lease the install created, in
// annotations of RFC 3339 times and plain numbers; without that Lease it
// says how to get it back.
func TestWriteRecord(t *testing.T) {
	c := config("node:/var/lib/etcd-backups")
	cs := fake.NewClientset(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: c.ObjectName(), Namespace: c.Namespace, Labels: c.Labels(),
		Annotations: map[string]string{"someone.else/note": "kept"}}})
	leases := cs.CoordinationV1().Leases(c.Namespace)
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.FixedZone("KST", 9*3600))
	ctx := context.Background()
	if err := WriteRecord(ctx, leases, c.Namespace, c.ObjectName(), Outcome{Time: at, File: "f", Size: 10, SHA256: "ab", Revision: 7, Took: "1s", Kept: []Object{{Name: "f", Size: 3}}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteRecord(ctx, leases, c.Namespace, c.ObjectName(), Outcome{Time: at.Add(time.Hour), Took: "2s", Error: "no"}); err != nil {
		t.Fatal(err)
	}
	lease, _ := leases.Get(ctx, c.ObjectName(), metav1.GetOptions{})
	want := map[string]string{
		"someone.else/note": "kept", AnnoLastAttempt: "2026-12-06T18:00:00Z", AnnoLastTook: "2s", AnnoLastError: "no",
		AnnoLastSuccess: "2026-12-06T17:00:00Z", AnnoLastFile: "f", AnnoLastSize: "10", AnnoLastRevision: "7", AnnoLastSHA256: "ab",
		AnnoKeptFiles: `[{"name":"f","size":3}]`,
	}
	if diff := cmp.Diff(want, lease.Annotations); diff != "" {
		t.Errorf("the Lease's annotations (-want +got):\n%s", diff)
	}
	err := WriteRecord(ctx, leases, c.Namespace, "kubectl-etcd-backup-gone", Outcome{Time: at})
	if err == nil || !strings.Contains(err.Error(), "kubectl etcd schedule backup") {
		t.Errorf("no Lease: %v", err)
	}
}
