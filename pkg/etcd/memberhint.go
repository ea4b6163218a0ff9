package etcd

import (
	"context"
	"errors"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// WithHint adds what to look at next to member m's error, unless the
// layer that knew the cause gave one.
func WithHint(m discovery.Member, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case hint.Of(err) != "":
		return err // the layer that knew the cause said what to do
	case m.NodeReady != nil && !*m.NodeReady:
		return hint.With(err, "node %s is NotReady: kubectl describe node %s", m.Node, m.Node)
	// gRPC carries TLS alerts and dial errors as text only.
	case strings.Contains(msg, "bad certificate") || strings.Contains(msg, "certificate required") || strings.Contains(msg, "unknown certificate authority"):
		return hint.Permanent(err, "the member rejected the client certificate named by the pod spec; check --cert-file/--trusted-ca-file in %s", m.Pod)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "connection refused"):
		return hint.With(err, "member unreachable: kubectl -n %s logs %s", m.Namespace, m.Pod)
	}
	return err
}
