// Package compression is how a snapshot may be compressed on its way and
// in its file: zstd (smaller) or s2 (faster), both of
// github.com/klauspost/compress. A compressed stream is told from a
// snapshot by its first bytes: a bbolt database starts with a page
// header, never with either magic.
package compression

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

const (
	// Zstd compresses about 3.3 times a cluster's objects at its fastest
	// level, at about etcd's own pace on one core.
	Zstd = "zstd"
	// S2 compresses them about 2.5 times, about three times as fast, and
	// stores incompressible blocks as they are.
	S2 = "s2"
)

// Names are the compressions there are.
var Names = []string{S2, Zstd}

// Check refuses a name that is not a compression; "" is none.
func Check(name string) error {
	if name == "" || slices.Contains(Names, name) {
		return nil
	}
	return fmt.Errorf("unknown compression %q: want %s", name, strings.Join(Names, " or "))
}

// NewWriter compresses into w; Close ends the stream (and does not close
// w). name "" writes w as it is.
func NewWriter(name string, w io.Writer) (io.WriteCloser, error) {
	switch name {
	case "":
		return nopCloser{w}, nil
	case Zstd:
		// The fastest level: the node's CPU is the control plane's, and
		// the stream must keep up with etcd.
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	case S2:
		// Two blocks in flight: one compressed while the other is
		// written, on a control plane's few cores.
		return s2.NewWriter(w, s2.WriterConcurrency(2)), nil
	}
	return nil, Check(name)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	// s2Magic is S2's stream identifier chunk, which starts its streams.
	s2Magic = []byte("\xff\x06\x00\x00S2sTwO")
)

// Detect says which compression br's stream starts with, "" for none
// (or a stream too short to tell), without consuming it. The error is
// the stream's own, when it fails before its first bytes are read.
func Detect(br *bufio.Reader) (string, error) {
	head, err := br.Peek(len(s2Magic))
	switch {
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd, nil
	case bytes.Equal(head, s2Magic):
		return S2, nil
	case err != nil && err != io.EOF && len(head) == 0:
		return "", err
	}
	return "", nil
}

// NewReader decompresses r, compressed with name; at the end of the
// stream, or on Close, it releases what it holds (Close does not close
// r). A truncated or corrupt stream is an error that names the
// compression.
func NewReader(name string, r io.Reader) (io.ReadCloser, error) {
	switch name {
	case Zstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		return &reader{name: name, r: d, release: d.Close}, nil
	case S2:
		return &reader{name: name, r: s2.NewReader(r)}, nil
	}
	return nil, fmt.Errorf("no compression %q to read", name)
}

type reader struct {
	name    string
	r       io.Reader
	release func()
	done    bool
}

func (z *reader) Read(p []byte) (int, error) {
	if z.done {
		return 0, io.EOF
	}
	n, err := z.r.Read(p)
	switch {
	case err == io.EOF:
		z.Close()
	case err != nil:
		err = fmt.Errorf("the snapshot's %s stream is truncated or corrupt: %w", z.name, err)
	}
	return n, err
}

// Close releases the decoder.
func (z *reader) Close() error {
	if !z.done && z.release != nil {
		z.release()
	}
	z.done = true
	return nil
}
