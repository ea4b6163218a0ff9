package schedule

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/internal/s3test"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// TestIntegrationRunJob runs what a schedule's pod runs against a real
// TLS member: each kept file decrypts with the identity that was never
// installed and passes the snapshot's check, the retention keeps the
// newest two, the Lease holds the record, and a failed run is recorded
// beside the last success. Then the same to S3, with the credentials
// from the pod's environment.
func TestIntegrationRunJob(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real etcd cluster")
	}
	cl := etcdtest.Start(t, 1)
	ctx := context.Background()
	for i := range 200 {
		if _, err := cl.Client(t).Put(ctx, fmt.Sprintf("/registry/configmaps/default/cm%d", i), strings.Repeat("data ", 500)); err != nil {
			t.Fatal(err)
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Name: "nightly", Namespace: "kube-system", Schedule: "0 2 * * *", Recipients: []string{id.Recipient().String()},
		Dest: Dest{Kind: DestNode, Path: "/var/lib/etcd-backups"}, Keep: Rule{Count: 2}, Image: "kubectl-etcd:test",
		Endpoint: cl.Members[0].ClientURL, CertFile: cl.PKI.CertFile, KeyFile: cl.PKI.KeyFile, CAFile: cl.PKI.CAFile}
	cs := fake.NewClientset()
	if _, err := Install(ctx, cs, rendered(t, c)); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	job := Job{Root: "/", Dir: dir, Getenv: func(string) string { return "" }, Leases: cs.CoordinationV1().Leases(c.Namespace),
		Now: func() time.Time { return clock }, Log: t.Logf}

	var last Outcome
	for range 3 {
		clock = clock.Add(24 * time.Hour)
		if last, err = RunJob(ctx, c, job); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := Dir(dir).List(ctx)
	if len(files) != 2 || files[1].Name != last.File {
		t.Fatalf("files kept: %v, want the newest two, the last %s", files, last.File)
	}
	v, err := snapshot.Verify(filepath.Join(dir, last.File), []age.Identity{id})
	if err != nil || !v.Compressed || v.Size != last.Size || v.FileSHA256 != last.SHA256 {
		t.Fatalf("the kept file: %+v, %v; the run said %+v", v, err, last)
	}
	rec := record(t, cs, c)
	if rec.LastFile != last.File || rec.LastSHA256 != last.SHA256 || rec.LastRevision < 200 || len(rec.Kept) != 2 || rec.LastError != "" || !rec.LastSuccess.Equal(clock) {
		t.Errorf("record %+v after %+v", rec, last)
	}

	// etcd not there: the run fails, keeps and removes nothing, and is
	// recorded beside the last success.
	down := c
	down.Endpoint = "https://127.0.0.1:1"
	clock = clock.Add(time.Hour)
	if _, err := RunJob(ctx, down, job); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("etcd down: %v", err)
	}
	if after, _ := Dir(dir).List(ctx); len(after) != 2 {
		t.Errorf("a failed run changed the dir: %v", after)
	}
	rec = record(t, cs, c)
	if !strings.Contains(rec.LastError, "does not answer") || !rec.LastAttempt.Equal(clock) || rec.LastFile != last.File || len(rec.Kept) != 2 {
		t.Errorf("record after a failure: %+v", rec)
	}

	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t, "backups")
		s3c := c
		s3c.Dest = Dest{Kind: DestS3, Bucket: "backups", Prefix: "etcd/", Endpoint: srv.Endpoint, Secret: "etcd-backup-s3"}
		env := map[string]string{EnvAccessKeyID: srv.AccessKey, EnvSecretAccessKey: srv.SecretKey}
		withEnv := job
		withEnv.Getenv = func(k string) string { return env[k] }
		out, err := RunJob(ctx, s3c, withEnv)
		if err != nil {
			t.Fatal(err)
		}
		b, err := srv.Get(t, "backups", "etcd/"+out.File)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), out.File)
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if v, err := snapshot.Verify(file, []age.Identity{id}); err != nil || v.Size != out.Size {
			t.Errorf("the object: %+v, %v", v, err)
		}
		// No credentials in the pod: said, and recorded.
		withEnv.Getenv = func(string) string { return "" }
		if _, err := RunJob(ctx, s3c, withEnv); err == nil || !strings.Contains(record(t, cs, c).LastError, "no S3 credentials") {
			t.Errorf("no credentials: %v, record %+v", err, record(t, cs, c))
		}
	})
}

func record(t *testing.T, cs kubernetes.Interface, c Config) Record {
	t.Helper()
	lease, err := cs.CoordinationV1().Leases(c.Namespace).Get(context.Background(), c.ObjectName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReadRecord(lease)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
