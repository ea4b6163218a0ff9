package plugin

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/snapshottest"
)

func TestSnapshotInspectDecryptDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing directory", []string{"inspect", "x.db.age", "--decrypt-dir", missing}, "--decrypt-dir " + missing + " is not a directory"},
		{"missing file", []string{"inspect", filepath.Join(t.TempDir(), "x.db"), "--decrypt-dir", t.TempDir()}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			cmd := NewCmdSnapshot(NewGlobalOptions(streams))
			cmd.SetArgs(tc.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Execute() = %v, want %q", err, tc.want)
			}
		})
	}
}

// usageFixture is a snapshot with what makes the two views part ways if
// they group keys by different rules: history, deletions, leases, the
// two resources under /registry/services/, renamed and grouped prefixes.
var usageFixture = func() snapshottest.Snapshot {
	ops := []snapshottest.Op{
		snapshottest.Put("/registry/services/specs/default/kubernetes", 400),
		snapshottest.Put("/registry/services/endpoints/default/kubernetes", 300),
		snapshottest.Put("/registry/minions/cp1", 5000),
		snapshottest.Put("/registry/controllers/prod/rc1", 900),
		snapshottest.Put("/registry/ingress/prod/web", 600),
		snapshottest.Put("/registry/apiregistration.k8s.io/apiservices/v1.apps", 300),
		snapshottest.Put("/registry/example.com/widgets/prod/w1", 700),
		snapshottest.Del("/registry/example.com/widgets/prod/w1"),
		{Key: "/registry/events/prod/web.1", Size: 500, Lease: 1},
		snapshottest.Del("/registry/events/prod/web.1"),
		{Key: "/registry/events/prod/web.2", Size: 500, Lease: 1},
	}
	for i := range 6 {
		ops = append(ops, snapshottest.Put(fmt.Sprintf("/registry/pods/prod/web-%d", i), 3000))
	}
	for i := range 40 {
		ops = append(ops, snapshottest.Put("/registry/leases/kube-node-lease/cp1", 250), snapshottest.Put("/registry/services/endpoints/default/kubernetes", 300+i))
	}
	return snapshottest.Snapshot{Ops: append(ops, snapshottest.Del("/registry/pods/prod/web-5")), Leases: 1, CompactedAt: 3}
}()

// runLocal runs a command that reads no cluster.
func runLocal(t *testing.T, args ...string) string {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	cmd := NewCmdEtcdWithOptions(NewGlobalOptions(streams))
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errOut)
	}
	return out.String()
}

// TestSnapshotInspectAndUsageAgree: snapshot inspect and usage --snapshot
// show the same numbers for each resource of one file, in the same
// order, and the same totals.
func TestSnapshotInspectAndUsageAgree(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "etcd.db")
	snapshottest.Write(t, file, usageFixture)
	type row struct {
		Prefix                               string
		Keys, Bytes, Revisions, HistoryBytes int64
	}
	for _, top := range []string{"0", "3", "20"} {
		t.Run("top "+top, func(t *testing.T) {
			var inspect struct {
				Revision int64
				TotalKey int64
				Usage    []row
			}
			var usage struct {
				Revision  int64
				Total     row
				Resources []row
				Rest      *row
			}
			for what, v := range map[string]any{"inspect": &inspect, "usage": &usage} {
				args := []string{"snapshot", "inspect", file, "--top", top, "-o", "json"}
				if what == "usage" {
					args = []string{"usage", "--snapshot", file, "--top", top, "-o", "json"}
				}
				if err := json.Unmarshal([]byte(runLocal(t, args...)), v); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
			if len(inspect.Usage) == 0 || !reflect.DeepEqual(inspect.Usage, usage.Resources) {
				t.Errorf("per resource:\ninspect %+v\nusage   %+v", inspect.Usage, usage.Resources)
			}
			if inspect.Revision != usage.Revision || inspect.TotalKey != usage.Total.Keys {
				t.Errorf("inspect: revision %d, %d keys; usage: revision %d, %d keys", inspect.Revision, inspect.TotalKey, usage.Revision, usage.Total.Keys)
			}
			var sum int64
			for _, r := range inspect.Usage {
				sum += r.Keys
			}
			if usage.Rest != nil {
				sum += usage.Rest.Keys
			}
			if sum != inspect.TotalKey {
				t.Errorf("the rows hold %d keys, the file %d", sum, inspect.TotalKey)
			}
		})
	}
	// The tables, with the file named as one would name it.
	var inspect, usage string
	t.Run("tables", func(t *testing.T) {
		t.Chdir(dir)
		inspect, usage = runLocal(t, "snapshot", "inspect", "etcd.db"), runLocal(t, "usage", "--snapshot", "etcd.db", "-o", "wide")
	})
	golden.Assert(t, "cmd-snapshot-inspect", []byte(inspect))
	golden.Assert(t, "cmd-usage-snapshot", []byte(usage))
}
