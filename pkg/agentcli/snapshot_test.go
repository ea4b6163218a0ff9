package agentcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/syncbuf"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/compression"
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
	for _, compress := range []string{"", "zstd", "s2"} {
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
				zr, err := compression.NewReader(compress, &out)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				plain = zr
				if st.Written*2 > st.Read {
					t.Errorf("%s wrote %d of %d bytes: repeated text compresses far better", compress, st.Written, st.Read)
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
		{"no such member", "snapshot of etcd at https://127.0.0.1:1: it does not answer from here", []string{"snapshot", "--endpoint", "https://127.0.0.1:1", "--cert", c.PKI.CertFile, "--key", c.PKI.KeyFile, "--cacert", c.PKI.CAFile}},
		{"no certificate", "etcd's client certificate", []string{"snapshot", "--endpoint", m.ClientURL, "--cert", "/nonexistent.crt", "--key", c.PKI.KeyFile, "--cacert", c.PKI.CAFile}},
		{"unknown compression", `unknown compression "gzip"`, append(append([]string{}, args...), "--compress", "gzip")},
		{"no endpoint", "snapshot needs --endpoint", []string{"snapshot", "--cert", c.PKI.CertFile}},
		{"nobody reads", "nobody connected to 127.0.0.1:", append(append([]string{}, args...), "--listen", "127.0.0.1:0", "--accept-timeout", "300ms")},
		{"listening, no such member", "it does not answer from here", []string{"snapshot", "--listen", "127.0.0.1:0", "--endpoint", "https://127.0.0.1:1", "--cert", c.PKI.CertFile, "--key", c.PKI.KeyFile, "--cacert", c.PKI.CAFile}},
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

// TestIntegrationServeSnapshot serves a real TLS member's snapshot to one
// connection, as a port-forward reads it: the agent says where it
// listens, the bytes are a whole snapshot, a second reader finds nobody
// listening, and the last line counts what went out.
func TestIntegrationServeSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real etcd cluster")
	}
	c := etcdtest.Start(t, 1)
	if _, err := c.Client(t).Put(context.Background(), "/registry/configmaps/default/a", strings.Repeat("data ", 2000)); err != nil {
		t.Fatal(err)
	}
	m := c.Members[0]
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"snapshot", "--listen", "127.0.0.1:0", "--compress", "zstd",
			"--endpoint", m.ClientURL, "--cert", c.PKI.CertFile, "--key", c.PKI.KeyFile, "--cacert", c.PKI.CAFile}, nil, &stdout, &stderr)
	}()
	var listening agentapi.SnapshotListening
	for deadline := time.Now().Add(10 * time.Second); listening.Listening == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line on stderr: %q", stderr.String())
		}
		if line, _, ok := strings.Cut(stderr.String(), "\n"); ok {
			if err := json.Unmarshal([]byte(line), &listening); err != nil {
				t.Fatalf("stderr %q: %v", line, err)
			}
		}
	}
	conn, err := net.Dial("tcp", listening.Listening)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := net.Dial("tcp", listening.Listening); err == nil {
		t.Error("a second connection was accepted: the snapshot goes to one reader")
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var st agentapi.SnapshotStreamed
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &st); err != nil || st.Written != int64(len(got)) || stdout.String() != "" {
		t.Fatalf("last line %q (%v) against %d bytes read; stdout %d bytes", lines[len(lines)-1], err, len(got), len(stdout.String()))
	}
	zr, err := compression.NewReader(compression.Zstd, bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if size, err := snapshot.VerifyReader(zr); err != nil || size != st.Read {
		t.Fatalf("the served snapshot: %d bytes (stderr says %d): %v", size, st.Read, err)
	}
}
