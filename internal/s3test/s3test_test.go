package s3test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBinaryFromEnv(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "versitygw")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env string
		want      string
		wantErr   string
	}{
		{name: "set", env: fake, want: fake},
		{name: "missing", env: filepath.Join(t.TempDir(), "nothing"), wantErr: "VERSITYGW="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("VERSITYGW", tc.env)
			got, err := Binary()
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Binary() = %q, %v; want an error with %q", got, err, tc.wantErr)
				}
			case err != nil || got != tc.want:
				t.Errorf("Binary() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// The server answers as S3 with the root key, and keeps a bucket as a
// dir of its root.
func TestStart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts versitygw")
	}
	s := Start(t, "bkt")
	s.Put(t, "bkt", "a/b.txt", []byte("hello"))
	got, err := s.Get(t, "bkt", "a/b.txt")
	if err != nil || !bytes.Equal(got, []byte("hello")) {
		t.Errorf("Get = %q, %v", got, err)
	}
	if _, err := s.Get(t, "bkt", "nothing"); !errors.Is(err, ErrNoObject) {
		t.Errorf("Get of a missing key: %v, want ErrNoObject", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "bkt", "a", "b.txt")); err != nil {
		t.Errorf("the object is not a file of the POSIX backend: %v", err)
	}
	if u := s.Uploads(t, "bkt"); len(u) != 0 {
		t.Errorf("uploads in progress: %v", u)
	}
}
