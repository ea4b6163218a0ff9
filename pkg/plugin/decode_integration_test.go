package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode/decodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// regexpRev is the revision in an export's header.
var regexpRev = regexp.MustCompile(`at revision [0-9]+`)

// TestIntegrationDecode writes a namespace's objects into a real
// 3-member TLS cluster as the API server does (protobuf with the
// scheme, JSON for a custom resource, a Secret encrypted at rest), then
// reads them with get, live and from an encrypted snapshot, and exports
// the namespace from that snapshot.
func TestIntegrationDecode(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	var pods []runtime.Object
	for i := range c.Members {
		pods = append(pods, c.Pod(i, etcdtest.Image))
	}
	ctx := context.Background()
	cli := c.Client(t)
	for _, kv := range decodetest.Namespace() {
		v, err := kv.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, kv.Key, string(v)); err != nil {
			t.Fatal(err)
		}
	}
	// A later change to one ConfigMap, for --rev.
	before, err := cli.Get(ctx, "/registry/configmaps/prod/app-config")
	if err != nil {
		t.Fatal(err)
	}
	changed := decodetest.ConfigMap()
	changed.Data["LOG_LEVEL"] = "info"
	if v, err := decode.EncodeProtobuf(changed); err != nil {
		t.Fatal(err)
	} else if resp, err := cli.Put(ctx, "/registry/configmaps/prod/app-config", string(v)); err != nil {
		t.Fatal(err)
	} else {
		// The snapshot and the reads below may come from any member.
		c.WaitApplied(t, cli, resp.Header.Revision)
	}
	oldRev := before.Kvs[0].ModRevision

	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "etcd.db.age")
	src := func(ctx context.Context) (io.ReadCloser, error) { return etcd.NewV3Conn(cli, 0).Snapshot(ctx) }
	if _, err := snapshot.Save(ctx, src, &snapshot.FileSink{Path: snap}, snapshot.Options{Encrypt: snapshot.Encrypter([]age.Recipient{id.Recipient()})}); err != nil {
		t.Fatal(err)
	}

	run := func(t *testing.T, args ...string) (string, string, error) {
		t.Helper()
		streams, _, out, errOut := genericiooptions.NewTestIOStreams()
		g := NewGlobalOptions(streams)
		g.Client = fake.NewClientset(pods...)
		g.Clients = c.ForwardTransport(5 * time.Second)
		cmd := NewCmdEtcdWithOptions(g)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(ctx)
		return out.String(), errOut.String(), err
	}
	mustRun := func(t *testing.T, args ...string) (string, string) {
		t.Helper()
		out, errOut, err := run(t, args...)
		if err != nil {
			t.Fatalf("kubectl etcd %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out, errOut
	}
	fromSnapshot := []string{"--snapshot", snap, "-i", idFile}

	t.Run("get", func(t *testing.T) {
		for _, where := range [][]string{nil, fromSnapshot} {
			out, _ := mustRun(t, append([]string{"get", "configmaps/prod/app-config"}, where...)...)
			if !strings.Contains(out, "# /registry/configmaps/prod/app-config (protobuf, revision") || !strings.Contains(out, "LOG_LEVEL: info") {
				t.Errorf("get %v:\n%s", where, out)
			}
			out, _ = mustRun(t, append([]string{"get", "/registry/pods/prod/debug", "-o", "json"}, where...)...)
			var pod corev1.Pod
			if err := json.Unmarshal([]byte(out), &pod); err != nil || pod.Name != "debug" || pod.Spec.NodeName != "hc-cp1" {
				t.Errorf("get -o json %v: %v\n%s", where, err, out)
			}
			out, errOut := mustRun(t, append([]string{"get", "secrets/prod/tls"}, where...)...)
			if !strings.Contains(out, "provider aescbc v1, key key1") || strings.Contains(out, "\x01\x02") {
				t.Errorf("encrypted secret %v:\n%s%s", where, out, errOut)
			}
			out, _ = mustRun(t, append([]string{"get", "secrets/prod/db", "--raw"}, where...)...)
			if want, _ := decode.EncodeProtobuf(decodetest.Secret()); out != string(want) {
				t.Errorf("--raw %v: %q", where, out)
			}
			out, errOut = mustRun(t, append([]string{"get", "--prefix", "secrets/prod", "--keys-only", "--limit", "2"}, where...)...)
			if out != "/registry/secrets/prod/builder-long-lived\n/registry/secrets/prod/builder-token-x1y2z\n" || !strings.Contains(errOut, "more are past --limit 2") {
				t.Errorf("--keys-only --limit %v:\n%s%s", where, out, errOut)
			}
			out, _ = mustRun(t, append([]string{"get", "cm/prod/app-config", "--rev", strconv.FormatInt(oldRev, 10)}, where...)...)
			if !strings.Contains(out, "LOG_LEVEL: debug") {
				t.Errorf("--rev %v:\n%s", where, out)
			}
			if _, _, err := run(t, append([]string{"get", "pods/prod/nothere"}, where...)...); err == nil || !strings.Contains(err.Error(), "not found") {
				t.Errorf("missing key %v: %v", where, err)
			}
		}
		live, _ := mustRun(t, "get", "--prefix", "/registry/")
		snapOut, _ := mustRun(t, append([]string{"get", "--prefix", "/registry/"}, fromSnapshot...)...)
		if live != snapOut {
			t.Errorf("the snapshot reads differently from the live cluster:\n--- live\n%s\n--- snapshot\n%s", live, snapOut)
		}
	})

	t.Run("snapshot export", func(t *testing.T) {
		out, errOut := mustRun(t, "snapshot", "export", snap, "-i", idFile, "--namespace", "prod")
		got := strings.ReplaceAll(out, snap, "SNAPSHOT")
		golden.Assert(t, "snapshot-export", []byte(regexpRev.ReplaceAllString(got, "at revision REV")))
		for _, want := range []string{"Left out Pod web-7d4b9c6f5-abcde", "Left out secrets tls", "Warning: PersistentVolumeClaim data"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		outDir := filepath.Join(t.TempDir(), "prod") + "/"
		_, errOut = mustRun(t, "snapshot", "export", snap, "-i", idFile, "-n", "prod", "--kind", "namespace,configmap", "-o", outDir)
		files, _ := filepath.Glob(outDir + "*.yaml")
		if len(files) != 2 || filepath.Base(files[0]) != "001-namespace-prod.yaml" || filepath.Base(files[1]) != "002-configmap-app-config.yaml" {
			t.Errorf("files %v\n%s", files, errOut)
		}
		if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode: %v %v", fi.Mode(), err)
		}
		if _, _, err := run(t, "snapshot", "export", snap, "-i", idFile, "-n", "nothere"); err == nil || !strings.Contains(err.Error(), "no object of namespace nothere") {
			t.Errorf("empty namespace: %v", err)
		}
		if b, _ := os.ReadFile(files[1]); !bytes.Contains(b, []byte("LOG_LEVEL: info")) {
			t.Errorf("configmap file:\n%s", b)
		}
	})
}
