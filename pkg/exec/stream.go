package exec

import (
	"context"
	"errors"
	"io"

	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubectl/pkg/util/term"
)

// Streams are the standard streams of an interactive command. With TTY
// the container gets a terminal, which merges stderr into stdout, and
// Resize carries the local terminal's size as it changes.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	Resize         remotecommand.TerminalSizeQueue
}

// StreamExecutor runs a command with its streams attached, on a terminal
// when asked: what `kubectl exec -it` does.
type StreamExecutor interface {
	Stream(ctx context.Context, pod PodRef, cmd []string, s Streams) error
}

// ErrNoTerminal is returned when a terminal is asked of an executor that
// cannot give one.
var ErrNoTerminal = errors.New("this executor cannot allocate a terminal")

// Streaming returns e as a StreamExecutor: itself when it is one,
// otherwise e without terminals (tests' executors, mostly).
func Streaming(e Executor) StreamExecutor {
	if s, ok := e.(StreamExecutor); ok {
		return s
	}
	return plainStreamer{e}
}

type plainStreamer struct{ Executor }

func (p plainStreamer) Stream(ctx context.Context, pod PodRef, cmd []string, s Streams) error {
	if s.TTY {
		return ErrNoTerminal
	}
	return p.Exec(ctx, pod, cmd, s.Stdin, s.Stdout, s.Stderr)
}

// TerminalSizes feeds the exec stream the sizes kubectl's terminal
// helper reports (term.TTY.MonitorSize); q may be nil.
func TerminalSizes(q term.TerminalSizeQueue) remotecommand.TerminalSizeQueue {
	if q == nil {
		return nil
	}
	return sizeQueue{q}
}

type sizeQueue struct{ q term.TerminalSizeQueue }

func (s sizeQueue) Next() *remotecommand.TerminalSize {
	n := s.q.Next()
	if n == nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: n.Width, Height: n.Height}
}
