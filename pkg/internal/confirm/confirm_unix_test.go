//go:build unix

package confirm

import (
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Ctrl-C at the prompt ends it at once, although nothing was typed.
func TestAskInterrupted(t *testing.T) {
	// This process ignores Ctrl-C meanwhile, as the plugin's own handler
	// does, so that a signal sent before the prompt listens kills nothing.
	own := make(chan os.Signal, 16)
	signal.Notify(own, os.Interrupt)
	defer signal.Stop(own)
	r, w := io.Pipe() // a terminal nobody types at
	defer w.Close()
	done := make(chan error, 1)
	go func() { done <- Ask(r, io.Discard, true, false, "Go on?", Yes...) }()
	deadline := time.After(30 * time.Second) // for a loaded machine
	for {
		// The prompt's handler may not be registered yet: signal until it is.
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "interrupted at the prompt") {
				t.Fatalf("err = %v", err)
			}
			return
		case <-deadline:
			t.Fatal("the prompt did not end on Ctrl-C")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
