// Package exec runs commands in pods and forwards ports to them, WebSocket
// first with a SPDY fallback, as kubectl does. It is the only package that
// touches the version-sensitive streaming transports.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// PodRef names a container in a pod.
type PodRef struct {
	Namespace string
	Name      string
	Container string
}

func (p PodRef) String() string { return p.Namespace + "/" + p.Name }

// Executor runs a command in a container. Stdin may be nil.
type Executor interface {
	Exec(ctx context.Context, pod PodRef, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("command exited with status %d: %v", e.Code, e.Err)
}
func (e *ExitError) Unwrap() error { return e.Err }

// ErrNotFound is returned (wrapped) when the command's executable does not
// exist in the container image.
var ErrNotFound = errors.New("executable not found in the container")

// ErrForbidden is returned (wrapped) when RBAC denies the exec or forward.
var ErrForbidden = errors.New("RBAC denied")

// RemoteExecutor execs through the API server.
type RemoteExecutor struct {
	Config *rest.Config
	Client rest.Interface // CoreV1().RESTClient()
}

// Exec implements Executor.
func (r *RemoteExecutor) Exec(ctx context.Context, pod PodRef, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return r.Stream(ctx, pod, cmd, Streams{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// Stream implements StreamExecutor.
func (r *RemoteExecutor) Stream(ctx context.Context, pod PodRef, cmd []string, s Streams) error {
	if s.TTY {
		// A terminal has one output: the container merges stderr into it.
		s.Stderr = nil
	}
	req := r.Client.Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec")
	req.VersionedParams(&corev1.PodExecOptions{
		Container: pod.Container,
		Command:   cmd,
		Stdin:     s.Stdin != nil,
		Stdout:    s.Stdout != nil,
		Stderr:    s.Stderr != nil,
		TTY:       s.TTY,
	}, scheme.ParameterCodec)
	ex, err := newExecutor(r.Config, req.URL().String())
	if err != nil {
		return err
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{
		Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr, Tty: s.TTY, TerminalSizeQueue: s.Resize,
	})
	return classify(err, pod, "create", "pods/exec")
}

func newExecutor(cfg *rest.Config, u string) (remotecommand.Executor, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", parsed)
	if err != nil {
		return nil, fmt.Errorf("building the SPDY executor: %w", err)
	}
	if !websocketsEnabled("KUBECTL_REMOTE_COMMAND_WEBSOCKETS") {
		return spdy, nil
	}
	// RFC 6455 requires GET for the WebSocket handshake.
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u)
	if err != nil {
		return nil, fmt.Errorf("building the WebSocket executor: %w", err)
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, shouldFallback)
}

// shouldFallback checks k8s.io/streaming's error type: client-go's
// WebSocket transports return it, and apimachinery's deprecated copy of
// IsUpgradeFailure does not recognise it, so with that one no refused
// upgrade ever fell back.
func shouldFallback(err error) bool {
	return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
}

// classify turns stream errors into errors a user can act on.
func classify(err error, pod PodRef, verb, resource string) error {
	if err == nil {
		return nil
	}
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		return &ExitError{Code: ce.Code, Err: err}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		return fmt.Errorf("%w: %s: %v", ErrNotFound, pod, err)
	case strings.Contains(msg, "forbidden") || strings.Contains(msg, "Forbidden"):
		return fmt.Errorf("%w: you cannot %s %s in namespace %q (%v).\n"+
			"Ask a cluster admin for a Role that allows verbs \"create\" and \"get\" (WebSocket clients upgrade with GET) on %q there (check: kubectl auth can-i %s %s -n %s)",
			ErrForbidden, verb, resource, pod.Namespace, err, resource, verb, resource, pod.Namespace)
	case strings.Contains(msg, "container not found") || strings.Contains(msg, "is not running") || strings.Contains(msg, "does not have a host assigned") || strings.Contains(msg, "pod does not exist"):
		return fmt.Errorf("pod %s is not running its container %q (%v); check: kubectl -n %s describe pod %s", pod, pod.Container, err, pod.Namespace, pod.Name)
	}
	return fmt.Errorf("%s %s on %s: %w", verb, resource, pod, err)
}

// websocketsEnabled follows kubectl: the WebSocket transports are on unless
// the variable is exactly "false".
func websocketsEnabled(env string) bool { return os.Getenv(env) != "false" }
