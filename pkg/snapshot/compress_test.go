package snapshot

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

func zstdBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
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
