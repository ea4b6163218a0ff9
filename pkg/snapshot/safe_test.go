package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// countingSource counts the streams it opens.
func countingSource(b []byte, calls *int) Source {
	return func(context.Context) (io.ReadCloser, error) {
		*calls++
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

func TestFileSinkRefusesUpFront(t *testing.T) {
	snap := snapshotBytes(t)
	tests := []struct {
		name string
		// setup lays out dir before the save of dir/etcd.db.
		setup func(t *testing.T, dir string)
		want  string
		// kept is a file that must be as setup left it.
		kept string
	}{
		{"symlink at FILE.part", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "victim"), "keep")
			if err := os.Symlink(filepath.Join(dir, "victim"), filepath.Join(dir, "etcd.db.part")); err != nil {
				t.Skip(err)
			}
		}, "etcd.db.part exists", "victim"},
		{"FILE.part of another backup", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "etcd.db.part"), "keep")
		}, "another backup may be writing it", "etcd.db.part"},
		{"FILE", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "etcd.db"), "keep")
		}, "etcd.db already exists", "etcd.db"},
		{"FILE.json", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "etcd.db.json"), "keep")
		}, "etcd.db.json already exists", "etcd.db.json"},
		{"FILE.json.part", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "etcd.db.json.part"), "keep")
		}, "etcd.db.json.part exists", "etcd.db.json.part"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			path := filepath.Join(dir, "etcd.db")
			sink := &FileSink{Path: path, Companions: []string{MetadataPath(path)}}
			if err := sink.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check() = %v, want %q", err, tc.want)
			}
			calls := 0
			_, err := Save(context.Background(), countingSource(snap, &calls), sink, Options{Retries: 2})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !hint.IsPermanent(err) {
				t.Errorf("Save() = %v, want a permanent %q", err, tc.want)
			}
			if calls != 0 {
				t.Errorf("the source was called %d times before the refusal", calls)
			}
			if b, err := os.ReadFile(filepath.Join(dir, tc.kept)); err != nil || string(b) != "keep" {
				t.Errorf("%s: %q, %v; want it untouched", tc.kept, b, err)
			}
		})
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentSavesToOneFile(t *testing.T) {
	snap := snapshotBytes(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		encrypt func(io.Writer) (io.WriteCloser, error)
		ids     []age.Identity
	}{
		{"plain", nil, nil},
		{"encrypted", Encrypter([]age.Recipient{id.Recipient()}), []age.Identity{id}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "etcd.db")
			started, release := make(chan struct{}), make(chan struct{})
			slow := func(context.Context) (io.ReadCloser, error) {
				close(started)
				<-release
				return io.NopCloser(bytes.NewReader(snap)), nil
			}
			var wg sync.WaitGroup
			var firstErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, firstErr = Save(context.Background(), slow, &FileSink{Path: path}, Options{Encrypt: tc.encrypt})
			}()
			<-started
			calls := 0
			_, err := Save(context.Background(), countingSource(snap, &calls), &FileSink{Path: path}, Options{Retries: 2, Encrypt: tc.encrypt})
			close(release)
			wg.Wait()
			if err == nil || !strings.Contains(err.Error(), path+".part exists") || calls != 0 {
				t.Errorf("second save = %v after %d streams; want a refusal naming the .part", err, calls)
			}
			if firstErr != nil {
				t.Fatalf("first save: %v", firstErr)
			}
			if _, err := Verify(path, tc.ids); err != nil {
				t.Errorf("the saved file: %v", err)
			}
			if _, err := os.Lstat(path + ".part"); err == nil {
				t.Errorf("%s.part left behind", path)
			}
		})
	}
}

func TestFileAppearsDuringSave(t *testing.T) {
	snap := snapshotBytes(t)
	path := filepath.Join(t.TempDir(), "etcd.db")
	src := func(context.Context) (io.ReadCloser, error) {
		write(t, path, "someone else's")
		return io.NopCloser(bytes.NewReader(snap)), nil
	}
	_, err := Save(context.Background(), src, &FileSink{Path: path}, Options{Retries: 2})
	if err == nil || !strings.Contains(err.Error(), "stays at "+path+".part") {
		t.Fatalf("Save() = %v, want the .part kept", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "someone else's" {
		t.Errorf("%s was replaced", path)
	}
	if _, err := VerifyFile(path + ".part"); err != nil {
		t.Errorf("the kept .part: %v", err)
	}
}

func TestRetriedAttemptReusesItsPart(t *testing.T) {
	snap := snapshotBytes(t)
	path := filepath.Join(t.TempDir(), "etcd.db")
	var parts []os.FileInfo
	src := func(ctx context.Context) (io.ReadCloser, error) {
		fi, err := os.Lstat(path + ".part")
		if err != nil {
			t.Errorf("no .part while the stream opens: %v", err)
		}
		parts = append(parts, fi)
		if AttemptOf(ctx).N == 1 {
			return io.NopCloser(&cutReader{r: bytes.NewReader(snap), n: 8192}), nil
		}
		return io.NopCloser(bytes.NewReader(snap)), nil
	}
	if _, err := Save(context.Background(), src, &FileSink{Path: path}, Options{Retries: 1}); err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || !os.SameFile(parts[0], parts[1]) {
		t.Errorf("the retry did not keep the .part it created")
	}
	if _, err := VerifyFile(path); err != nil {
		t.Error(err)
	}
}

// stallingReader sends n bytes, then nothing until its context ends.
type stallingReader struct {
	ctx context.Context
	r   io.Reader
	n   int
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		<-s.ctx.Done()
		return 0, s.ctx.Err()
	}
	n, err := s.r.Read(p[:min(len(p), s.n)])
	s.n -= n
	return n, err
}

func TestStallAndPermanentErrors(t *testing.T) {
	snap := snapshotBytes(t)
	// stall is both the timeout the stalled attempts wait out and the one
	// the retry streams the whole snapshot under (Options has one for
	// every attempt): short, yet far longer than any pause between two
	// reads of an in-memory stream on a loaded machine.
	const stall = time.Second
	stallOpen := func(ctx context.Context) (io.ReadCloser, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	stallMidway := func(ctx context.Context) (io.ReadCloser, error) {
		return io.NopCloser(&stallingReader{ctx: ctx, r: bytes.NewReader(snap), n: 8192}), nil
	}
	denied := func(context.Context) (io.ReadCloser, error) {
		return nil, hint.Permanent(errors.New("pods/portforward is forbidden"), "ask for create on pods/portforward")
	}
	tests := []struct {
		name string
		// first opens the first attempt's stream; later ones get snap.
		first     Source
		retries   int
		wantErr   error
		wantCalls int
	}{
		{"stall mid-way, retried", stallMidway, 1, nil, 2},
		{"stall while opening, retried", stallOpen, 1, nil, 2},
		{"stall without retries", stallMidway, 0, ErrStalled, 1},
		{"permanent error not retried", denied, 3, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "etcd.db")
			var seen []Attempt
			src := func(ctx context.Context) (io.ReadCloser, error) {
				seen = append(seen, AttemptOf(ctx))
				if len(seen) == 1 {
					return tc.first(ctx)
				}
				return io.NopCloser(bytes.NewReader(snap)), nil
			}
			start := time.Now()
			res, err := Save(context.Background(), src, &FileSink{Path: path}, Options{Retries: tc.retries, StallTimeout: stall})
			// Each attempt waits out at most one stall; the slack is for the
			// rest of the work on a loaded machine.
			if took := time.Since(start); took > stall*time.Duration(len(seen))+10*time.Second {
				t.Errorf("took %s", took)
			}
			if len(seen) != tc.wantCalls {
				t.Errorf("%d attempts, want %d", len(seen), tc.wantCalls)
			}
			switch {
			case tc.wantCalls == 1 && err == nil:
				t.Errorf("Save() succeeded, want an error")
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("Save() = %v, want %v", err, tc.wantErr)
			case tc.wantCalls == 2 && (err != nil || res.Attempts != 2):
				t.Errorf("Save() = %+v, %v; want success on attempt 2", res, err)
			}
			if tc.wantCalls == 2 && (seen[1].N != 2 || !errors.Is(seen[1].LastErr, ErrStalled)) {
				t.Errorf("second attempt saw %+v, want N 2 and the stall", seen[1])
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	m := &Metadata{
		File: "etcd.db", ClusterID: "cdf818194e3a8c32", Member: "cp1", MemberID: "8e9e05c52164694d",
		Revision: 42, EtcdVersion: "3.6.8", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Size: 20480, SHA256: "ab", SnapshotSHA256: "cd",
		Members: []MetadataMember{{ID: "8e9e05c52164694d", Name: "cp1", Status: "started", PeerURLs: []string{"https://10.0.0.1:2380"}}},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "etcd.db.json")
	if err := WriteMetadata(path, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMetadata(path)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("ReadMetadata() = %+v, %v; want %+v", got, err, m)
	}
	if err := WriteMetadata(path, m); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second WriteMetadata() = %v, want a refusal", err)
	}

	tests := []struct {
		name  string
		setup func(path string)
		want  string
	}{
		{"missing", func(string) {}, "no metadata file"},
		{"not json", func(p string) { write(t, p, "{") }, "is not snapshot metadata"},
		{"other json", func(p string) { write(t, p, `{"a":1}`) }, "lacks clusterID"},
	}
	for _, tc := range tests {
		t.Run("read "+tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.json")
			tc.setup(p)
			if _, err := ReadMetadata(p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadMetadata() = %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("failing mid-write", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "etcd.db.json")
		half := func(w io.Writer) io.Writer { return &fullAfter{w: w, n: 40} }
		if err := writeMetadata(path, m, half); err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Errorf("writeMetadata() = %v", err)
		}
		assertNoFile(t, path)
	})
}

// fullAfter writes n bytes, then fails like a full disk.
type fullAfter struct {
	w io.Writer
	n int
}

func (f *fullAfter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return f.w.Write(p)
	}
	n, _ := f.w.Write(p[:f.n])
	f.n = 0
	return n, errors.New("no space left on device")
}

// The schema moved from pkg/plugin; FILE.json files already written must
// read the same.
func TestMetadataMemberJSONMatchesMemberView(t *testing.T) {
	v := cluster.MemberView{ID: "8e9e05c52164694d", Name: "cp1", Node: "n1", Pod: "etcd-n1", Status: "started", IsLearner: true,
		PeerURLs: []string{"https://10.0.0.1:2380"}, ClientURLs: []string{"https://10.0.0.1:2379"}}
	want, _ := json.Marshal(v)
	var m MetadataMember
	if err := json.Unmarshal(want, &m); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(m); !bytes.Equal(got, want) {
		t.Errorf("MetadataMember JSON %s, MemberView %s", got, want)
	}
	wantKeys := "clusterID,context,encrypted,etcdVersion,file,kubernetesVersion,member,memberID,members,node,revision,sha256,size,snapshotSHA256,storageVersion,time"
	b, _ := json.Marshal(Metadata{Node: "x", StorageVersion: "x", KubernetesVersion: "x", Context: "x"})
	var keys map[string]any
	json.Unmarshal(b, &keys)
	if got := sortedKeys(keys); got != wantKeys {
		t.Errorf("metadata keys %s, want %s", got, wantKeys)
	}
}

func sortedKeys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

// encryptedSnapshot saves the test snapshot encrypted for a new identity.
func encryptedSnapshot(t *testing.T) (path string, ids []age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "etcd.db.age")
	if _, err := Save(context.Background(), source(snapshotBytes(t)), &FileSink{Path: path}, Options{Encrypt: Encrypter([]age.Recipient{id.Recipient()})}); err != nil {
		t.Fatal(err)
	}
	return path, []age.Identity{id}
}

func TestInspectLeavesNoPlaintextOnDisk(t *testing.T) {
	snap := snapshotBytes(t)
	path, ids := encryptedSnapshot(t)
	tmp := t.TempDir()
	tests := []struct {
		name, tmpdir string
	}{
		{"empty TMPDIR", tmp},
		{"TMPDIR that does not exist", filepath.Join(tmp, "missing")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TMPDIR", tc.tmpdir)
			p, err := Decrypt(path, ids, "")
			if err != nil {
				t.Fatal(err)
			}
			if !p.InMemory || !p.Encrypted || p.Size != int64(len(snap)) {
				t.Errorf("Decrypt() = %+v, want verified, in memory", p)
			}
			assertEmpty(t, tmp)
			b, err := io.ReadAll(p)
			if err != nil || !bytes.Equal(b, snap) {
				t.Errorf("reading the plain snapshot: %d bytes, %v", len(b), err)
			}
			p.Close()
			rep, err := analyzeFile(path, ids, "")
			if err != nil || !rep.Encrypted || rep.TotalKey == 0 {
				t.Errorf("analyzing the decrypted snapshot: %+v, %v", rep, err)
			}
			assertEmpty(t, tmp)
		})
	}

	t.Run("decrypt dir", func(t *testing.T) {
		dir := t.TempDir()
		p, err := Decrypt(path, ids, dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(p.Path); err != nil || p.InMemory || filepath.Dir(p.Path) != dir || fi.Mode().Perm() != 0o600 {
			t.Errorf("Decrypt() into %s = %+v, %v", dir, p, err)
		}
		p.Close()
		assertEmpty(t, dir)
	})
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		t.Errorf("%s holds %s", dir, e.Name())
	}
}
