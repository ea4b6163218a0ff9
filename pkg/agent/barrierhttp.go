package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// askTimeout bounds one question to a peer.
const askTimeout = 2 * time.Second

// Bounds on the listener, which anyone who reaches the node IP can connect
// to (X4). A peer asks one short question a second, one connection each,
// so a few connections at once are plenty; a client that stalls is cut
// off after askTimeout (the TLS handshake too), and one that opens many
// waits in the kernel's backlog instead of using up the agent's files.
const (
	maxBarrierConns       = 32
	maxBarrierHeaderBytes = 8 << 10
)

// barrierTLS builds the server and client configs from the node's etcd
// peer certificate. Both sides require a chain to etcd's peer CA. The
// client also checks the server's SAN against the address it dialled
// (kubeadm's peer certificates carry the node IP): an answer comes from
// that node. The server checks the chain only, since a node may reach it
// from another address than its peer IP, and what it serves is read-only
// and no secret; only the answers a node acts on need to be authentic.
func barrierTLS(root string, s *agentapi.RestoreSpec) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(under(root, s.PeerCertFile), under(root, s.PeerKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("load etcd's peer certificate for the barrier: %w", err)
	}
	caPEM, err := os.ReadFile(under(root, s.PeerCAFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read etcd's peer CA for the barrier: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("etcd's peer CA %s holds no PEM certificate", s.PeerCAFile)
	}
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	client = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: pool}
	return server, client, nil
}

// check refuses a restore whose barrier could not serve: a bad certificate
// or a taken port found now stops the restore with nothing changed.
func (b *PeerBarrier) check() error {
	if _, _, err := barrierTLS(b.root, b.spec); err != nil {
		return err
	}
	l, err := net.Listen("tcp", b.spec.Barrier.Addr)
	if err != nil {
		return fmt.Errorf("the barrier cannot listen on %s (%w): free the port, or plan the restore with another", b.spec.Barrier.Addr, err)
	}
	return l.Close()
}

// Serve starts the listener on BarrierSpec.Addr. Call Close when the run
// is over.
func (b *PeerBarrier) Serve() error {
	server, client, err := barrierTLS(b.root, b.spec)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", b.spec.Barrier.Addr)
	if err != nil {
		return fmt.Errorf("the barrier cannot listen on %s (%w): free the port, or plan the restore with another", b.spec.Barrier.Addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+agentapi.BarrierPath+"{id}", b.serveStatus)
	// One connection a question, HTTP/1.1: a poll a second costs little,
	// and Shutdown then finds no idle connection to wait for.
	b.srv = &http.Server{Handler: mux, TLSConfig: server, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: askTimeout, ReadTimeout: askTimeout, WriteTimeout: askTimeout, IdleTimeout: askTimeout, MaxHeaderBytes: maxBarrierHeaderBytes}
	b.srv.SetKeepAlivesEnabled(false)
	b.client = &http.Client{Timeout: askTimeout, Transport: &http.Transport{TLSClientConfig: client, DisableKeepAlives: true}}
	b.served = make(chan struct{})
	go func() {
		defer close(b.served)
		b.srv.ServeTLS(limitListener(l, maxBarrierConns), "", "")
	}()
	return nil
}

func (b *PeerBarrier) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != b.spec.ID {
		http.Error(w, "no such restore on this node", http.StatusNotFound)
		return
	}
	st, err := b.status()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// ask fetches a peer's status and checks that it speaks for this restore
// and that member.
func (b *PeerBarrier) ask(ctx context.Context, p agentapi.Peer) (*BarrierStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+p.Addr+agentapi.BarrierPath+b.spec.ID, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", p.Member, p.Addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", p.Member, p.Addr, err)
	}
	var st BarrierStatus
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil {
		return nil, fmt.Errorf("%s at %s: %s %q", p.Member, p.Addr, resp.Status, body)
	}
	if st.ID != b.spec.ID || st.Member != p.Member {
		return nil, fmt.Errorf("%s at %s answers for member %q, restore %q: the plan's peer addresses are wrong", p.Member, p.Addr, st.Member, st.ID)
	}
	if st.decided() != "" || st.rolledBack() {
		b.mu.Lock()
		b.known[p.Member] = true
		b.mu.Unlock()
	}
	return &st, nil
}

// Close keeps serving until every peer has been seen to record a decision
// or roll back, or BarrierSpec.Linger has passed, so that a slower peer
// can still learn the decision from this node; then it shuts down.
func (b *PeerBarrier) Close(ctx context.Context) error {
	if b.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.spec.Barrier.Linger))
	defer cancel()
	t := time.NewTicker(time.Duration(b.spec.PollInterval))
	defer t.Stop()
	for !b.allKnown(ctx) {
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		break
	}
	sctx, scancel := context.WithTimeout(context.Background(), askTimeout)
	defer scancel()
	err := b.srv.Shutdown(sctx)
	<-b.served
	b.client.CloseIdleConnections()
	if errors.Is(err, context.DeadlineExceeded) {
		err = b.srv.Close()
	}
	return err
}

func (b *PeerBarrier) allKnown(ctx context.Context) bool {
	all := true
	for _, p := range b.spec.Barrier.Peers {
		b.mu.Lock()
		known := b.known[p.Member]
		b.mu.Unlock()
		if !known {
			if _, err := b.ask(ctx, p); errors.Is(err, syscall.ECONNREFUSED) {
				// A peer past the barrier closes its listener only once its
				// run has ended, and so with a decision of its own: waiting
				// out the linger for it would only hold this node's agent.
				b.mu.Lock()
				b.known[p.Member] = true
				b.mu.Unlock()
			}
			b.mu.Lock()
			known = b.known[p.Member]
			b.mu.Unlock()
		}
		all = all && known
	}
	return all
}

// limitListener accepts at most n connections at once; the standard
// library's own, so that the agent needs nothing beyond it (x/net's
// netutil.LimitListener does the same).
func limitListener(l net.Listener, n int) net.Listener {
	return &limited{Listener: l, slots: make(chan struct{}, n), closed: make(chan struct{})}
}

type limited struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept waits for a free slot, then for a connection; the slot is freed
// when that connection closes.
func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, free: sync.OnceFunc(func() { <-l.slots })}, nil
}

// Close also ends an Accept waiting for a slot.
func (l *limited) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

type slotConn struct {
	net.Conn
	free func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.free()
	return err
}
