package agentcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// TestIntegrationSnapshot streams a real TLS member's snapshot, as etcd
// sends it and zstd-compressed: each is a whole snapshot (its sha256
// trailer checks), and the sizes on stderr are the bytes that came out.
func TestIntegrationSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	for i := range 300 {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("/registry/configmaps/default/cm%d", i), strings.Repeat("data ", 2000)); err != nil {
			t.Fatal(err)
		}
	}
	m := c.Members[1]
	args := []string{"snapshot", "--endpoint", m.ClientURL, "--cert", c.PKI.CertFile, "--key", c.PKI.KeyFile, "--cacert", c.PKI.CAFile}
	var sizes []int64
	for _, compress := range []string{"", "zstd"} {
		t.Run("compress="+compress, func(t *testing.T) {
			var out, errb bytes.Buffer
			a := args
			if compress != "" {
				a = append(a, "--compress", compress)
			}
			if code := Main(context.Background(), a, nil, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var st agentapi.SnapshotStreamed
			if err := json.Unmarshal(errb.Bytes(), &st); err != nil {
				t.Fatalf("stderr %q: %v", errb.String(), err)
			}
			if st.Written != int64(out.Len()) || st.Compression != compress {
				t.Errorf("stderr says %+v; stdout had %d bytes", st, out.Len())
			}
			var plain io.Reader = &out
			if compress != "" {
				zr, err := zstd.NewReader(&out)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				plain = zr
				if st.Written*2 > st.Read {
					t.Errorf("zstd wrote %d of %d bytes: repeated text compresses far better", st.Written, st.Read)
				}
			}
			size, err := snapshot.VerifyReader(plain)
			if err != nil || size != st.Read {
				t.Fatalf("the streamed snapshot: %d bytes (stderr says %d): %v", size, st.Read, err)
			}
			sizes = append(sizes, size)
		})
	}
	if len(sizes) == 2 && sizes[0] != sizes[1] {
		t.Errorf("the plain snapshot has %d bytes, the compressed one %d", sizes[0], sizes[1])
	}

	for _, tt := range []struct {
		name, want string
		args       []string
	}{
		{"no such member", "snapshot of etcd at https://127.0.0.1:1: it does not answer on this node", []string{"snapshot", "--endpoint", "https://127.0.0.1:1", "--cert", c.PKI.CertFile, "--key", c.PKI.KeyFile, "--cacert", c.PKI.CAFile}},
		{"no certificate", "etcd's client certificate", []string{"snapshot", "--endpoint", m.ClientURL, "--cert", "/nonexistent.crt", "--key", c.PKI.KeyFile, "--cacert", c.PKI.CAFile}},
		{"unknown compression", `unknown compression "gzip"`, append(append([]string{}, args...), "--compress", "gzip")},
		{"no endpoint", "snapshot needs --endpoint", []string{"snapshot", "--cert", c.PKI.CertFile}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			if code := Main(ctx, tt.args, nil, &out, &errb); time.Since(start) > 5*time.Second {
				t.Errorf("took %s to fail", time.Since(start))
			} else if code == 0 || !strings.Contains(errb.String(), tt.want) || out.Len() != 0 {
				t.Errorf("exit %d, stdout %d bytes, stderr %q; want an error naming %q", code, out.Len(), errb.String(), tt.want)
			}
		})
	}
}
