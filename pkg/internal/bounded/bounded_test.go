package bounded

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestBuffer(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		in       string
		want     string
		exceeded bool
	}{
		{"fits", 10, "hello", "hello", false},
		{"exact", 5, "hello", "hello", false},
		{"cut", 3, "hello", "hel", true},
		{"zero", 0, "x", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.max)
			_, err := io.Copy(b, strings.NewReader(tt.in))
			var tl *ErrTooLarge
			if tt.exceeded != errors.As(err, &tl) {
				t.Errorf("err = %v, exceeded want %v", err, tt.exceeded)
			}
			if b.String() != tt.want || b.Exceeded() != tt.exceeded {
				t.Errorf("got %q exceeded=%v, want %q %v", b.String(), b.Exceeded(), tt.want, tt.exceeded)
			}
		})
	}
}
