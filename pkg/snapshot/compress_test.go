package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/compression"
)

func zstdBytes(t *testing.T, b []byte) []byte { return compressed(t, compression.Zstd, b) }

func compressed(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := compression.NewWriter(name, &buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func ageBytes(t *testing.T, r age.Recipient, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// A zstd-compressed snapshot, plain or then encrypted, reads as the
// snapshot itself: verify, inspect and Open see the plain bytes, and say
// it was compressed; a truncated or corrupt one is named as such.
func TestCompressedSnapshots(t *testing.T) {
	snap := snapshotBytes(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ids := []age.Identity{id}
	z := zstdBytes(t, snap)
	bad := append([]byte{}, z...)
	bad[len(bad)/2] ^= 0xff
	dir := t.TempDir()
	for _, tt := range []struct {
		name      string
		file      []byte
		encrypted bool
		wantText  string
	}{
		{name: "zstd", file: z},
		{name: "zstd then age", file: ageBytes(t, id.Recipient(), z), encrypted: true},
		{name: "truncated zstd", file: z[:len(z)/2], wantText: "zstd stream is truncated or corrupt"},
		{name: "corrupt zstd", file: bad, wantText: "zstd stream is truncated or corrupt"},
		{name: "s2", file: compressed(t, compression.S2, snap)},
		{name: "s2 then age", file: ageBytes(t, id.Recipient(), compressed(t, compression.S2, snap)), encrypted: true},
		{name: "truncated s2", file: compressed(t, compression.S2, snap)[:len(z)/2], wantText: "s2 stream is truncated or corrupt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			os.WriteFile(path, tt.file, 0o600)
			v, err := Verify(path, ids)
			if tt.wantText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("verify: %v, want an error naming %q", err, tt.wantText)
				}
				return
			}
			if err != nil || !v.Compressed || v.Size != int64(len(snap)) {
				t.Fatalf("verify: %+v, %v", v, err)
			}
			p, err := Decrypt(path, ids, "")
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if !p.Compressed || p.Encrypted != tt.encrypted || p.Size != int64(len(snap)) || !p.InMemory {
				t.Errorf("plain file %+v", p)
			}
			rep, err := Analyze(p)
			if err != nil || rep.TotalKey == 0 {
				t.Errorf("inspect: %+v, %v", rep, err)
			}
			rc, _, err := Open(path, ids)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, snap) {
				t.Errorf("Open read %d bytes, not the snapshot's %d", len(got), len(snap))
			}
		})
	}
}

// Save of a zstd source writes the compressed bytes as they come (then
// encrypted, when asked), checks the decompressed snapshot's trailer, and
// reads its revision from them; a corrupt snapshot inside good zstd is
// refused, and a cut stream is retried from the start.
func TestSaveCompressed(t *testing.T) {
	snap := snapshotBytes(t)
	z := zstdBytes(t, snap)
	plainPath := filepath.Join(t.TempDir(), "plain.db")
	os.WriteFile(plainPath, snap, 0o600)
	wantRev, err := Revision(plainPath)
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte{}, snap...)
	flipped[100] ^= 1
	s2 := compressed(t, compression.S2, snap)
	for _, tt := range []struct {
		name    string
		src     Source
		encrypt bool
		want    string
		file    []byte // the file written, when not encrypted
	}{
		{name: "compressed", src: source(z), file: z},
		{name: "compressed then encrypted", src: source(z), encrypt: true},
		{name: "a cut stream, retried", src: cutOnce(z, len(z)/3), file: z},
		{name: "a corrupt snapshot in good zstd", src: source(zstdBytes(t, flipped)), want: "sha256"},
		{name: "s2", src: source(s2), file: s2},
		{name: "a corrupt snapshot in good s2", src: source(compressed(t, compression.S2, flipped)), want: "sha256"},
		{name: "not compressed", src: source(snap), want: "the stream is not compressed as asked (neither s2 nor zstd)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "etcd.db.zst")
			opts := Options{Compressed: true, Retries: 1}
			if tt.encrypt {
				opts.Encrypt = Encrypter([]age.Recipient{id.Recipient()})
			}
			var progressed int64
			opts.Progress = func(r io.Reader) io.Reader { // per attempt
				progressed = 0
				return &countingReader{r: r, n: &progressed}
			}
			res, err := Save(context.Background(), tt.src, &FileSink{Path: path}, opts)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got %v, want an error naming %q", err, tt.want)
				}
				if _, serr := os.Stat(path); !os.IsNotExist(serr) {
					t.Errorf("a refused snapshot left %s", path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			file, _ := os.ReadFile(path)
			if !tt.encrypt && !bytes.Equal(file, tt.file) {
				t.Errorf("the file holds %d bytes, not the %d compressed ones", len(file), len(tt.file))
			}
			sum := sha256.Sum256(file)
			if res.Size != int64(len(snap)) || res.FileSHA256 != hex.EncodeToString(sum[:]) || res.Revision != wantRev || progressed != int64(len(snap)) {
				t.Errorf("result %+v (progress %d); want size %d, revision %d", res, progressed, len(snap), wantRev)
			}
			v, err := Verify(path, []age.Identity{id})
			if err != nil || !v.Compressed || v.FileSHA256 != res.FileSHA256 {
				t.Errorf("verify: %+v, %v", v, err)
			}
		})
	}
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// cutOnce is a source whose first stream breaks after n bytes.
func cutOnce(b []byte, n int) Source {
	calls := 0
	return func(context.Context) (io.ReadCloser, error) {
		calls++
		if calls == 1 {
			return io.NopCloser(&cutReader{r: bytes.NewReader(b), n: n}), nil
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}
