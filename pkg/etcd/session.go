package etcd

import (
	"context"
	"io"
	"sync"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// Session is one command's view of the cluster: the member list read
// once, and the transports with their TLS material, shared by every step
// of the command. A backup's status check and its stream, or auto's
// fallback, therefore read the keys with one helper pod, not one each.
type Session struct {
	Discover func(ctx context.Context) ([]discovery.Member, error)
	Exec     *ExecTransport
	Forward  *ForwardTransport
	// Forced is the transport --transport names ("exec" or
	// "port-forward"); empty for auto.
	Forced string
	// Log is where auto says that it switched.
	Log io.Writer

	mu      sync.Mutex
	members []discovery.Member
	autos   map[Policy]*Auto
}

// Transport is how a command under policy p reaches etcd: p's only
// transport when it has one, else the one --transport names, else auto
// over p's order. A command's steps under one policy share one Auto, so
// that its switch, once made, holds for all of them.
func (s *Session) Transport(p Policy) Transport {
	if p.Only {
		return s.named(p.First)
	}
	if s.Forced != "" {
		return s.named(s.Forced)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.autos[p]; a != nil {
		return a
	}
	a := &Auto{First: s.named(p.First), Then: s.named(p.other()), Log: s.Log}
	if s.autos == nil {
		s.autos = map[Policy]*Auto{}
	}
	s.autos[p] = a
	return a
}

func (s *Session) named(name string) Transport {
	if name == TransportExec {
		return s.Exec
	}
	return s.Forward
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
