// Package bounded holds what is read from pods (cat, etcdctl, error
// streams) in memory with a ceiling, so that a misbehaving pod cannot
// make the plugin grow without limit.
package bounded

import (
	"bytes"
	"fmt"
)

// Buffer is a bytes.Buffer that refuses to grow past Max bytes. A write
// that would cross it fails, and Exceeded reports it afterwards.
// It does not embed bytes.Buffer, whose ReadFrom would let io.Copy
// bypass the ceiling.
type Buffer struct {
	buf      bytes.Buffer
	Max      int
	exceeded bool
}

// Bytes returns what was kept.
func (b *Buffer) Bytes() []byte { return b.buf.Bytes() }

// String returns what was kept.
func (b *Buffer) String() string { return b.buf.String() }

// Len is the number of bytes kept.
func (b *Buffer) Len() int { return b.buf.Len() }

// New returns a buffer that holds at most max bytes.
func New(max int) *Buffer { return &Buffer{Max: max} }

// ErrTooLarge is returned by Write once the ceiling is reached.
type ErrTooLarge struct{ Max int }

func (e *ErrTooLarge) Error() string {
	return fmt.Sprintf("more than %d bytes of output", e.Max)
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	if room := b.Max - b.Len(); len(p) > room {
		b.exceeded = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return max(room, 0), &ErrTooLarge{Max: b.Max}
	}
	return b.buf.Write(p)
}

// Exceeded reports whether anything was cut.
func (b *Buffer) Exceeded() bool { return b.exceeded }
