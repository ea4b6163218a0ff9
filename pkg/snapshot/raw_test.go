package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestRawCopies: a member's database without the trailer (what copy-db
// copies) saves with Raw, is refused by a snapshot check, is read by
// DecryptAny with Raw set and by Decrypt not at all; Settle's refusal
// leaves nothing.
func TestRawCopies(t *testing.T) {
	snap := snapshotBytes(t)
	raw := snap[:len(snap)-trailerSize]
	dir := t.TempDir()
	sum := sha256.Sum256(raw)

	tests := []struct {
		name    string
		data    []byte
		raw     bool
		settle  error
		wantErr error
	}{
		{"raw db saved raw", raw, true, nil, nil},
		{"raw db saved as a snapshot", raw, false, nil, ErrNoTrailer},
		{"truncated raw db", raw[:len(raw)-100], true, nil, ErrNotBolt},
		{"not bolt", make([]byte, 3*4096), true, nil, ErrNotBolt},
		{"settle refuses", raw, true, errors.New("changed under the copy"), nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "f"+string(rune('a'+i)))
			var got string
			opts := Options{Raw: tt.raw, Settle: func(size int64, s string) error { got = s; return tt.settle }}
			res, err := Save(context.Background(), source(tt.data), &FileSink{Path: path}, opts)
			switch {
			case tt.settle != nil:
				if !errors.Is(err, tt.settle) {
					t.Fatalf("err = %v, want %v", err, tt.settle)
				}
				assertNoFile(t, path)
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				assertNoFile(t, path)
				return
			case err != nil:
				t.Fatal(err)
			}
			if res.SnapshotSHA256 != "" || res.FileSHA256 != hex.EncodeToString(sum[:]) || got != res.FileSHA256 || res.Size != int64(len(raw)) {
				t.Errorf("result %+v, settle saw %s", res, got)
			}
			if st, _ := os.Stat(path); st == nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s not saved 0600", path)
			}
			if _, err := Decrypt(path, nil, ""); !errors.Is(err, ErrNoTrailer) {
				t.Errorf("Decrypt took a raw copy: %v", err)
			}
			p, err := DecryptAny(path, nil, "")
			if err != nil || !p.Raw {
				t.Fatalf("DecryptAny: %v, %+v", err, p)
			}
			defer p.Close()
			rep, err := Analyze(p)
			if err != nil || !rep.Raw || rep.Revision == 0 {
				t.Errorf("Analyze: %v, %+v", err, rep)
			}
		})
	}
}
