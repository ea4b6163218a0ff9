package etcd

import (
	"context"
	"sync"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// Session is one command's view of the cluster: the member list read
// once, and the transports with their TLS material, shared by every step
// of the command. A backup's status check and its stream, or auto's
// fallback, therefore read the keys with one helper pod, not one each.
type Session struct {
	Discover func(ctx context.Context) ([]discovery.Member, error)
	Exec     *ExecDialer
	Forward  *ForwardDialer
	// Dialer is the transport --transport asks for, built over Exec and
	// Forward.
	Dialer Dialer

	mu      sync.Mutex
	members []discovery.Member
}

// NewSession builds a session whose Dialer is transport ("exec",
// "port-forward", or anything else for auto).
func NewSession(discover func(context.Context) ([]discovery.Member, error), ex *ExecDialer, fwd *ForwardDialer, transport string, auto func(*AutoDialer)) *Session {
	s := &Session{Discover: discover, Exec: ex, Forward: fwd}
	switch transport {
	case ex.Name():
		s.Dialer = ex
	case fwd.Name():
		s.Dialer = fwd
	default:
		a := &AutoDialer{Exec: ex, Forward: fwd}
		if auto != nil {
			auto(a)
		}
		s.Dialer = a
	}
	return s
}

// Members returns the members, discovered on the first call. A failed
// discovery is not kept, so a later call tries again.
func (s *Session) Members(ctx context.Context) ([]discovery.Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members != nil {
		return s.members, nil
	}
	ms, err := s.Discover(ctx)
	if err != nil {
		return nil, err
	}
	s.members = ms
	return ms, nil
}

