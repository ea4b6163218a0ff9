package compression

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// sample is 3 MiB shaped like a snapshot: compressible text with a
// stretch of random bytes.
func sample() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 2<<20; i++ {
		b.WriteString(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-`)
		b.WriteString(strings.Repeat("x", i%17))
		b.WriteString(`","namespace":"default"}}`)
	}
	r := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 1<<20)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	return append(b.Bytes(), noise...)
}

func compress(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(name, &out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Each compression's stream is told by its first bytes, reads back whole,
// and a stream cut short or damaged is an error naming it.
func TestRoundTrip(t *testing.T) {
	data := sample()
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			z := compress(t, name, data)
			if len(z) >= len(data)*3/4 {
				t.Errorf("%s wrote %d bytes of %d", name, len(z), len(data))
			}
			br := bufio.NewReader(bytes.NewReader(z))
			if got, err := Detect(br); got != name || err != nil {
				t.Fatalf("Detect = %q, want %q", got, name)
			}
			r, err := NewReader(name, br)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes of %d, err %v", len(got), len(data), err)
			}
			if err := r.Close(); err != nil {
				t.Error(err)
			}
			for what, broken := range map[string][]byte{
				"cut":     z[:len(z)/2],
				"damaged": append(append(append([]byte{}, z[:len(z)/3]...), bytes.Repeat([]byte{0xa5}, 64)...), z[len(z)/3+64:]...),
			} {
				r, _ := NewReader(name, bytes.NewReader(broken))
				_, err := io.ReadAll(r)
				if err == nil || !strings.Contains(err.Error(), "the snapshot's "+name+" stream is truncated or corrupt") {
					t.Errorf("%s stream: err = %v", what, err)
				}
				r.Close()
			}
		})
	}
}

// A bbolt file, and anything too short, is not compressed; an unknown
// name is refused, naming those there are.
func TestDetectAndCheck(t *testing.T) {
	page := make([]byte, 4096) // a bbolt meta page starts with its id and flags
	page[8] = 0x04
	for _, tc := range []struct {
		name string
		in   []byte
	}{{"bbolt page", page}, {"empty", nil}, {"short", []byte{0x28, 0xb5}}, {"snappy, not s2", []byte("\xff\x06\x00\x00sNaPpY")}} {
		if got, err := Detect(bufio.NewReader(bytes.NewReader(tc.in))); got != "" || err != nil {
			t.Errorf("%s: Detect = %q, %v", tc.name, got, err)
		}
	}
	broken := errors.New("the member went away")
	if _, err := Detect(bufio.NewReader(iotest.ErrReader(broken))); err != broken {
		t.Errorf("a failing stream: Detect's error %v, want the stream's", err)
	}
	for _, ok := range []string{"", Zstd, S2} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v", ok, err)
		}
	}
	if err := Check("gzip"); err == nil || !strings.Contains(err.Error(), `unknown compression "gzip": want s2 or zstd`) {
		t.Errorf("Check(gzip) = %v", err)
	}
	if _, err := NewWriter("gzip", io.Discard); err == nil {
		t.Error("NewWriter(gzip) wrote")
	}
	w, err := NewWriter("", io.Discard)
	if err != nil || w.Close() != nil {
		t.Errorf("no compression: %v", err)
	}
}
