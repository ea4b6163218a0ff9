package schedule

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/internal/s3test"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/snapshottest"
)

// snapshot list and get against a real S3 server: the keys from the
// environment or from a Secret read through the API, never printed; the
// objects right under the prefix, newest first, verified as they stream;
// one copied to a verified 0600 file, and a damaged one not kept.
func TestBrowseS3Integration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts versitygw")
	}
	srv := s3test.Start(t, "backups")
	ctx := context.Background()
	id, _ := age.GenerateX25519Identity()
	file, _ := snapshottest.Sealed(t, id.Recipient())
	damaged := slices.Clone(file)
	damaged[len(damaged)-50] ^= 0xff
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	newest, older := FileName("nightly", at), FileName("nightly", at.Add(-24*time.Hour))
	for key, b := range map[string][]byte{
		"etcd/prod/" + newest: file, "etcd/prod/" + older: damaged, "etcd/prod/manual.db.age": file,
		"etcd/prod/" + newest + ".part": file[:10], "etcd/prod/deeper/" + newest: file, "etcd/other/" + newest: file,
	} {
		srv.Put(t, "backups", key, b)
	}
	env := map[string]string{EnvAccessKeyID: srv.AccessKey, EnvSecretAccessKey: srv.SecretKey}
	dest, err := ParseDest("s3://backups/etcd/prod")
	if err != nil {
		t.Fatal(err)
	}
	dest.Endpoint = srv.Endpoint
	browse := Browse{Dest: dest, Getenv: func(k string) string { return env[k] }}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "etcd-backup-s3", Namespace: "kube-system"},
		Data: map[string][]byte{EnvAccessKeyID: []byte(srv.AccessKey), EnvSecretAccessKey: []byte(srv.SecretKey)}}
	deps := BrowseDeps{Client: fake.NewClientset(secret)}

	t.Run("list, keys from the environment", func(t *testing.T) {
		bs, err := ListBackups(ctx, deps, ListConfig{Browse: browse})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range bs {
			names = append(names, b.Name)
			if b.Size != int64(len(file)) || b.Node != "" || b.Taken.IsZero() {
				t.Errorf("%+v", b)
			}
		}
		// manual.db.age's time is when it was put: now, the newest.
		if want := []string{"manual.db.age", newest, older}; !slices.Equal(names, want) {
			t.Errorf("listed %v, want %v", names, want)
		}
	})

	t.Run("list --verify, keys from a Secret", func(t *testing.T) {
		b := browse
		b.Getenv, b.S3Secret, b.SecretNamespace, b.Identities = nil, "etcd-backup-s3", "kube-system", []age.Identity{id}
		bs, err := ListBackups(ctx, deps, ListConfig{Browse: b, Verify: true})
		if err == nil || !strings.Contains(err.Error(), "1 of 3 backups failed verification") {
			t.Errorf("err = %v", err)
		}
		for _, b := range bs {
			bad := b.Name == older
			if v := b.Verified; v == nil || (v.Error != "") != bad || v.Content == bad {
				t.Errorf("%s: %+v", b.Name, b.Verified)
			}
		}
	})

	t.Run("a wrong key is said, the secret key never", func(t *testing.T) {
		wrong := secret.DeepCopy()
		wrong.Data[EnvSecretAccessKey] = []byte("not-the-secret-key-0123456789")
		b := browse
		b.S3Secret, b.SecretNamespace = "etcd-backup-s3", "kube-system"
		_, err := ListBackups(ctx, BrowseDeps{Client: fake.NewClientset(wrong)}, ListConfig{Browse: b})
		if err == nil || !strings.Contains(err.Error(), "in Secret kube-system/etcd-backup-s3") || strings.Contains(err.Error(), "not-the-secret-key") {
			t.Errorf("err = %v", err)
		}
	})

	for _, tc := range []struct {
		name, get string
		err       string
	}{
		{"get", newest, ""},
		{"get a damaged one", older, "not kept"},
		{"get what is not there", FileName("nightly", at.Add(time.Hour)), "no file nightly-20261207T030000Z.db.zst.age in s3://backups/etcd/prod/"},
		{"get from deeper", "deeper/" + newest, "without '/'"},
		{"get from beside", "../other/" + newest, "without '/', '..'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "etcd.db.zst.age")
			b := browse
			b.Identities = []age.Identity{id}
			got, err := GetBackup(ctx, deps, GetConfig{Browse: b, Name: tc.get, File: out})
			if checkKept(t, out, err, tc.err, nil, file) && (!got.Verified.Content || got.From != "s3://backups/etcd/prod/") {
				t.Errorf("got %+v", got)
			}
		})
	}
}
