package etcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// Source opens a client of type C (an operation package's narrow client
// interface) to one member.
type Source[C any] interface {
	Client(ctx context.Context, m discovery.Member) (C, error)
}

// Fallback dials through Primary (the port-forward transport), and for
// good through Secondary (exec) once Primary's preparation fails: the
// helper pod that reads the TLS material cannot start. Under a NOSPACE
// alarm no pod can, since the API server's writes are refused.
type Fallback[C any] struct {
	Primary, Secondary Source[C]
	Log                io.Writer

	mu  sync.Mutex
	use Source[C]
}

// Prepare prepares Primary, and switches to Secondary when that fails.
func (f *Fallback[C]) Prepare(ctx context.Context, pods []discovery.Member) error {
	use := f.Primary
	if p, ok := f.Primary.(Preparer); ok {
		// A cancelled command (Ctrl-C) is no reason to switch.
		if err := p.Prepare(ctx, pods); err != nil && ctx.Err() == nil {
			if f.Log != nil {
				fmt.Fprintf(f.Log, "port-forward transport unavailable (%s); using etcdctl in the etcd containers\n", firstOf(err))
			}
			use = f.Secondary
		}
	}
	f.mu.Lock()
	f.use = use
	f.mu.Unlock()
	return nil
}

// firstOf is err on one line: the first of joined errors (one per
// node, often alike), with how many more there are.
func firstOf(err error) string {
	n := 1
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) && len(j.Unwrap()) > 0 {
		err, n = j.Unwrap()[0], len(j.Unwrap())
	}
	s := strings.Join(strings.Fields(err.Error()), " ")
	if n > 1 {
		s += fmt.Sprintf("; and %d more", n-1)
	}
	return s
}

// Client dials m through the transport Prepare chose (Primary before).
func (f *Fallback[C]) Client(ctx context.Context, m discovery.Member) (C, error) {
	f.mu.Lock()
	use := f.use
	f.mu.Unlock()
	if use == nil {
		use = f.Primary
	}
	return use.Client(ctx, m)
}

// ExecNarrowed serves d's ExecClients as C: the exec transport (etcdctl
// in each etcd container) for an operation package. It needs no helper
// pod, so it works when none can start.
type ExecNarrowed[C any] struct{ D *ExecDialer }

// Client binds an ExecClient to m and returns it as a C.
func (e ExecNarrowed[C]) Client(_ context.Context, m discovery.Member) (C, error) {
	var zero C
	c, err := e.D.ExecClient(m)
	if err != nil {
		return zero, err
	}
	n, ok := any(c).(C)
	if !ok {
		return zero, fmt.Errorf("etcdctl in the etcd container cannot serve this operation (%s)", reflect.TypeFor[C]())
	}
	return n, nil
}
