package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
)

// realSnapshot takes a snapshot of a real etcd holding some Kubernetes-like
// keys, once for the whole test binary.
var realSnapshot []byte

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

func snapshotBytes(t *testing.T) []byte {
	t.Helper()
	if realSnapshot != nil {
		return realSnapshot
	}
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	ctx := context.Background()
	put := func(k string, n int) {
		if _, err := cli.Put(ctx, k, strings.Repeat("x", n)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		put(fmt.Sprintf("/registry/configmaps/default/cm-%d", i), 10000)
		put(fmt.Sprintf("/registry/pods/default/pod-%d", i), 1000)
	}
	put("/registry/pods/default/pod-0", 2000) // a second revision
	put("/registry/apiregistration.k8s.io/apiservices/v1.apps", 300)
	if _, err := cli.Delete(ctx, "/registry/pods/default/pod-19"); err != nil {
		t.Fatal(err)
	}
	rc, err := etcd.NewV3Conn(cli, 0).Snapshot(ctx)

	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	realSnapshot = b
	return b
}

func source(b []byte) Source {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// cutReader fails after n bytes, like a dropped port-forward.
type cutReader struct {
	r io.Reader
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

type failingSink struct{ FileSink }

type fullDisk struct{ w io.Writer }

func (f fullDisk) Write(p []byte) (int, error) { return 0, errors.New("no space left on device") }

func (s *failingSink) Begin() (io.Writer, error) {
	if _, err := s.FileSink.Begin(); err != nil {
		return nil, err
	}
	return fullDisk{}, nil
}

func assertNoFile(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + ".part"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists after a failed save", p)
		}
	}
}

func TestSaveFailuresLeaveNoFile(t *testing.T) {
	snap := snapshotBytes(t)
	corrupt := append([]byte{}, snap...)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name    string
		src     Source
		sink    func(path string) Sink
		cancel  bool
		wantErr string
	}{
		{name: "stream cut mid-way, no retries", src: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(&cutReader{r: bytes.NewReader(snap), n: len(snap) / 2}), nil
		}, wantErr: "connection reset"},
		{name: "truncated stream", src: source(snap[:len(snap)-1000]), wantErr: "no sha256 trailer"},
		{name: "wrong hash", src: source(corrupt), wantErr: "does not match"},
		{name: "full disk", src: source(snap), sink: func(p string) Sink { return &failingSink{FileSink{Path: p}} }, wantErr: "no space left"},
		{name: "ctrl-c", src: source(snap), cancel: true, wantErr: "context canceled"},
		{name: "not a snapshot", src: source(bytes.Repeat([]byte("a"), 16384+32)), wantErr: "not a bbolt database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "etcd.db")
			var sink Sink = &FileSink{Path: path}
			if tc.sink != nil {
				sink = tc.sink(path)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			_, err := Save(ctx, tc.src, sink, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			assertNoFile(t, path)
		})
	}
}

func TestSaveRetriesAndVerifies(t *testing.T) {
	snap := snapshotBytes(t)
	path := filepath.Join(t.TempDir(), "etcd.db")
	calls := 0
	src := func(context.Context) (io.ReadCloser, error) {
		calls++
		if calls == 1 {
			return io.NopCloser(&cutReader{r: bytes.NewReader(snap), n: 4096}), nil
		}
		return io.NopCloser(bytes.NewReader(snap)), nil
	}
	var notes []string
	res, err := Save(context.Background(), src, &FileSink{Path: path}, Options{Retries: 2, Notify: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || len(notes) != 1 || res.Size != int64(len(snap)) {
		t.Errorf("attempts %d notes %v size %d", res.Attempts, notes, res.Size)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("final file: %v, mode %v", err, fi.Mode())
	}
	if _, err := VerifyFile(path); err != nil {
		t.Error(err)
	}
	if _, err := Save(context.Background(), source(snap), &FileSink{Path: path}, Options{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrote an existing snapshot: %v", err)
	}
}

// chunkReader returns at most n bytes a read, so the trailer writer sees
// writes shorter than, equal to and longer than the 32-byte trailer.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func TestTrailerWriterChunkSizesAndFileSum(t *testing.T) {
	snap := snapshotBytes(t)
	want := sha256.Sum256(snap)
	for _, n := range []int{1, 7, 31, 32, 33, 4096, 32 << 10, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "etcd.db")
			src := func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(chunkReader{bytes.NewReader(snap), n}), nil
			}
			res, err := Save(context.Background(), src, &FileSink{Path: path}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.FileSHA256 != hex.EncodeToString(want[:]) {
				t.Errorf("file sha256 %s, want %x", res.FileSHA256, want)
			}
			if res.SnapshotSHA256 != hex.EncodeToString(snap[len(snap)-32:]) {
				t.Errorf("trailer %s, want %x", res.SnapshotSHA256, snap[len(snap)-32:])
			}
		})
	}
}

func TestStreamSinkDoesNotRetryAfterWriting(t *testing.T) {
	snap := snapshotBytes(t)
	var out bytes.Buffer
	calls := 0
	src := func(context.Context) (io.ReadCloser, error) {
		calls++
		return io.NopCloser(&cutReader{r: bytes.NewReader(snap), n: 8192}), nil
	}
	if _, err := Save(context.Background(), src, &StreamSink{W: &out}, Options{Retries: 3}); err == nil || calls != 1 {
		t.Errorf("err %v after %d attempts", err, calls)
	}
	out.Reset()
	if _, err := Save(context.Background(), source(snap), &StreamSink{W: &out}, Options{}); err != nil || !bytes.Equal(out.Bytes(), snap) {
		t.Errorf("stdout stream: %v, %d bytes", err, out.Len())
	}
}

// analyzeFile reads a snapshot file as snapshot inspect does: decrypted
// (into memory unless dir is set) and verified, then analyzed.
func analyzeFile(path string, ids []age.Identity, dir string) (*Report, error) {
	p, err := Decrypt(path, ids, dir)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return Analyze(p)
}

func TestAnalyzeMatchesEtcdutl(t *testing.T) {
	snap := snapshotBytes(t)
	path := filepath.Join(t.TempDir(), "etcd.db")
	if _, err := Save(context.Background(), source(snap), &FileSink{Path: path}, Options{}); err != nil {
		t.Fatal(err)
	}
	rep, err := analyzeFile(path, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := etcdutl.NewV3(zap.NewNop()).Status(path)
	if err != nil {
		t.Fatal(err)
	}
	if rev, err := Revision(path); err != nil || rev != want.Revision {
		t.Errorf("Revision = %d, %v; etcdutl says %d", rev, err, want.Revision)
	}
	if rep.Hash != fmt.Sprintf("%x", want.Hash) || rep.Revision != want.Revision || rep.TotalKey != want.TotalKey || rep.TotalSize != want.TotalSize || rep.Version != want.Version {
		t.Errorf("inspect %+v, etcdutl %+v", rep, want)
	}
	if rep.BoltKeys <= rep.TotalKey {
		t.Errorf("bolt keys %d should exceed live keys %d (history, meta buckets)", rep.BoltKeys, rep.TotalKey)
	}
	// 20 configmaps, 19 pods (one deleted), one apiservice.
	if rep.TotalKey != 40 || rep.ServedKeys != 40 {
		t.Errorf("total keys %d, served %d; want 40", rep.TotalKey, rep.ServedKeys)
	}
}

func TestEncryptedRoundTrip(t *testing.T) {
	snap := snapshotBytes(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	idFile := filepath.Join(dir, "key.txt")
	os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600)
	rs, err := Recipients([]string{id.Recipient().String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "etcd.db.age")
	res, err := Save(context.Background(), source(snap), &FileSink{Path: path}, Options{Encrypt: Encrypter(rs)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("/registry/configmaps")) {
		t.Fatal("encrypted file holds plain keys")
	}
	if _, err := analyzeFile(path, nil, ""); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Errorf("inspect without identity: %v", err)
	}
	ids, err := Identities([]string{idFile})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := analyzeFile(path, ids, "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Encrypted || rep.Size != int64(len(snap)) || rep.FileSHA256 != res.FileSHA256 || rep.TotalKey == 0 {
		t.Errorf("report %+v, save %+v", rep, res)
	}
	// FILE.json's revision for an encrypted backup is the plaintext's own,
	// read as it streamed: what Revision gives for the plain file (R1).
	plain := filepath.Join(dir, "plain.db")
	os.WriteFile(plain, snap, 0o600)
	want, err := Revision(plain)
	if err != nil {
		t.Fatal(err)
	}
	if res.RevisionErr != nil || res.Revision != want || want == 0 {
		t.Errorf("streamed revision %d (%v), the plain file's %d", res.Revision, res.RevisionErr, want)
	}
}

func TestVerifyFileErrors(t *testing.T) {
	snap := snapshotBytes(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	tests := map[string]struct {
		b    []byte
		want error
	}{
		"truncated":  {snap[:len(snap)-100], ErrNoTrailer},
		"raw db":     {snap[:len(snap)-32], ErrNoTrailer},
		"tiny":       {[]byte("hello"), ErrTooSmall},
		"flipped":    {append(append([]byte{}, snap[:100]...), append([]byte{snap[100] ^ 1}, snap[101:]...)...), ErrHashMismatch},
		"not a bolt": {bytes.Repeat([]byte{7}, 16384+32), ErrNotBolt},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Verify(write(name, tc.b), nil); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
