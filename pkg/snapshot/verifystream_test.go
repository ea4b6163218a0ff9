package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// VerifyStream reads a download to its end and checks what it can: the
// snapshot inside, with an identity (or when plain); only an age file's
// header without one, saying so.
func TestVerifyStream(t *testing.T) {
	snap := snapshotBytes(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	sealed := ageBytes(t, id.Recipient(), zstdBytes(t, snap))
	var armored bytes.Buffer
	aw := armor.NewWriter(&armored)
	aw.Write(sealed)
	aw.Close()
	damaged := append([]byte{}, sealed...)
	damaged[len(damaged)-100] ^= 0xff
	headerless := append([]byte("age-encryption.org/v1\n-> X25519\n"), sealed[200:]...)
	for _, tc := range []struct {
		name       string
		file       []byte
		ids        []age.Identity
		headerOnly bool
		err        string
	}{
		{name: "plain", file: snap},
		{name: "zstd", file: zstdBytes(t, snap)},
		{name: "zstd then age", file: sealed, ids: []age.Identity{id}},
		{name: "zstd then age, no identity", file: sealed, headerOnly: true},
		{name: "armored, no identity", file: armored.Bytes(), headerOnly: true},
		{name: "another's identity", file: sealed, ids: []age.Identity{other}, err: "did not match any of the recipients"},
		{name: "damaged payload", file: damaged, ids: []age.Identity{id}, err: "file may be corrupted"},
		{name: "damaged payload, no identity", file: damaged, headerOnly: true},
		{name: "a damaged header, no identity", file: headerless, err: "not a readable age file"},
		{name: "truncated plain", file: snap[:len(snap)-1000], err: "sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var read int64
			r := &countingReader{r: bytes.NewReader(tc.file), n: &read}
			v, err := VerifyStream(r, "nightly.db.zst.age", tc.ids, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("VerifyStream = %+v, %v; want an error with %q", v, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(tc.file)
			if v.FileSize != int64(len(tc.file)) || v.FileSHA256 != hex.EncodeToString(sum[:]) || read != int64(len(tc.file)) {
				t.Errorf("file %d bytes, sha256 %s, %d read; want %d, %x", v.FileSize, v.FileSHA256, read, len(tc.file), sum)
			}
			if v.HeaderOnly != tc.headerOnly {
				t.Errorf("header only: %v, want %v", v.HeaderOnly, tc.headerOnly)
			}
			if tc.headerOnly && !slices.Equal(v.Recipients, []string{"X25519"}) {
				t.Errorf("recipients %v", v.Recipients)
			}
			if !tc.headerOnly && v.Size != int64(len(snap)) {
				t.Errorf("snapshot of %d bytes, want %d", v.Size, len(snap))
			}
		})
	}
	// What is read is copied as it comes, and a copy that fails ends it.
	var copied bytes.Buffer
	if _, err := VerifyStream(bytes.NewReader(sealed), "f", []age.Identity{id}, &copied); err != nil || !bytes.Equal(copied.Bytes(), sealed) {
		t.Errorf("copied %d bytes of %d: %v", copied.Len(), len(sealed), err)
	}
	if _, err := VerifyStream(bytes.NewReader(sealed), "f", []age.Identity{id}, fullDisk{}); err == nil || !strings.Contains(err.Error(), "writing the snapshot: no space left on device") {
		t.Errorf("a copy to a full disk: %v", err)
	}
	// Verify of a path still wants the identity.
	if _, err := Verify(writeTemp(t, sealed), nil); err == nil || !strings.Contains(err.Error(), "pass --identity") {
		t.Errorf("Verify without identity: %v", err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := t.TempDir() + "/f"
	write(t, p, string(b))
	return p
}
