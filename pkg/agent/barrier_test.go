package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
)

func TestNewBarrier(t *testing.T) {
	s := restoreSpec()
	if b := NewBarrier("/", s); b != nil {
		t.Errorf("a single member got a barrier %T", b)
	}
	s.Barrier = &agentapi.BarrierSpec{Addr: "10.0.0.1:2382", Peers: []agentapi.Peer{{Member: "cp0", Addr: "10.0.0.2:2382"}}}
	b := NewBarrier("/", s)
	if b == nil {
		t.Fatal("peers but no barrier: the node would swap alone")
	}
	if b.coordinator != "cp0" {
		t.Errorf("coordinator %s, want cp0 (its name sorts first)", b.coordinator)
	}
	if err := b.Await(context.Background()); !errors.Is(err, ErrHold) {
		t.Errorf("a barrier that does not serve: %v, want a hold", err)
	}
}

// member is one agent's barrier on loopback, with a journal whose phase
// and barrier step the test sets, and the node's peer certificate.
type member struct {
	b    *PeerBarrier
	spec *agentapi.RestoreSpec
	root string
}

// barrierTimeout is the coordinator's timeout in the tests that need the
// barrier to decide on what the members say: it must never run out
// there, however slow a loaded machine runs the TLS round trips, or the
// coordinator aborts (and a participant, after twice as long, holds).
// shortBarrierTimeout is for the tests that wait for a timeout to run
// out, and so keep it short.
const (
	barrierTimeout      = 30 * time.Second
	shortBarrierTimeout = 300 * time.Millisecond
)

// barrierLinger is how long a member may keep serving once closed: far
// longer than the "at once" a member whose peers have all decided takes.
const barrierLinger = 30 * time.Second

func newMembers(t *testing.T, names ...string) []*member {
	t.Helper()
	pki, err := etcdtest.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var ms []*member
	for _, name := range names {
		root := t.TempDir()
		pkiDir := filepath.Join(root, "etc/kubernetes/pki/etcd")
		if err := pki.Issue(filepath.Join(pkiDir, "peer.crt"), filepath.Join(pkiDir, "peer.key"), []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(pkiDir, "ca.crt"), string(readFile(t, pki.CAFile)))
		if err := os.MkdirAll(filepath.Join(root, "var/lib/kubectl-etcd/restore/r1"), 0o700); err != nil {
			t.Fatal(err)
		}
		s := &agentapi.RestoreSpec{ID: "r1", Member: name, JournalDir: "/var/lib/kubectl-etcd/restore/r1", PollInterval: agentapi.Duration(10 * time.Millisecond),
			PeerCertFile: "/etc/kubernetes/pki/etcd/peer.crt", PeerKeyFile: "/etc/kubernetes/pki/etcd/peer.key", PeerCAFile: "/etc/kubernetes/pki/etcd/ca.crt",
			Barrier: &agentapi.BarrierSpec{Addr: freeAddr(t), Timeout: agentapi.Duration(barrierTimeout), Linger: agentapi.Duration(barrierLinger)}}
		ms = append(ms, &member{spec: s, root: root})
	}
	for _, m := range ms {
		for _, o := range ms {
			if o != m {
				m.spec.Barrier.Peers = append(m.spec.Barrier.Peers, agentapi.Peer{Member: o.spec.Member, Addr: o.spec.Barrier.Addr})
			}
		}
		m.b = NewBarrier(m.root, m.spec)
		m.setJournal(t, agentapi.PhaseRunning, agentapi.Running)
	}
	return ms
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// setJournal writes a journal whose barrier step is in state.
func (m *member) setJournal(t *testing.T, phase agentapi.Phase, state agentapi.State) {
	t.Helper()
	j := &agentapi.Journal{ID: "r1", Operation: agentapi.RestoreOperation, Phase: phase, Steps: []agentapi.StepRecord{{Name: "stop etcd", State: agentapi.Done}, {Name: agentapi.StepBarrier, State: state, PointOfNoReturn: true}}}
	if err := SaveJournal(j, m.b.journal); err != nil {
		t.Fatal(err)
	}
}

func (m *member) serve(t *testing.T) {
	t.Helper()
	if err := m.b.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.b.spec.Barrier.Linger = 0 // Close has its own tests
		m.b.srv.Close()
	})
}

// awaitAll runs Await on every member at once.
func awaitAll(ms ...*member) []error {
	errs := make([]error, len(ms))
	done := make(chan struct{})
	for i, m := range ms {
		go func() { errs[i] = m.b.Await(context.Background()); done <- struct{}{} }()
	}
	for range ms {
		<-done
	}
	return errs
}

func (m *member) recorded(t *testing.T) agentapi.Decision {
	t.Helper()
	d, err := m.b.recorded()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBarrierCommitsWhenEveryMemberIsReady(t *testing.T) {
	ms := newMembers(t, "cp3", "cp1", "cp2")
	for _, m := range ms {
		m.serve(t)
	}
	start := time.Now()
	for i, err := range awaitAll(ms...) {
		if err != nil {
			t.Errorf("%s: %v", ms[i].spec.Member, err)
		}
		if d := ms[i].recorded(t); d != agentapi.Commit {
			t.Errorf("%s recorded %q, want commit", ms[i].spec.Member, d)
		}
	}
	if d := time.Since(start); d > barrierTimeout {
		t.Errorf("commit took %s, longer than the coordinator's timeout", d)
	}
	// With its peers serving and decided, a member stops serving at once:
	// it asks them, which takes milliseconds, not its linger. The bound is
	// far above that (a loaded machine is slow) and far below the linger.
	// The last ones may linger, as their peers are gone.
	closeAll(t, barrierLinger/3, ms[0])
	closeAll(t, time.Duration(ms[1].spec.Barrier.Linger)+5*time.Second, ms[1:]...)
}

func closeAll(t *testing.T, within time.Duration, ms ...*member) {
	t.Helper()
	begin := time.Now()
	errs := make(chan error, len(ms))
	for _, m := range ms {
		go func() { errs <- m.b.Close(context.Background()) }()
	}
	for range ms {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if d := time.Since(begin); d > within {
		t.Errorf("closing %d members took %s, want at most %s", len(ms), d, within)
	}
	for _, m := range ms {
		if c, err := net.Dial("tcp", m.spec.Barrier.Addr); err == nil {
			c.Close()
			t.Errorf("%s still listens after Close", m.spec.Member)
		}
	}
}

func TestBarrierAbortsWhenAMemberRolledBack(t *testing.T) {
	ms := newMembers(t, "cp1", "cp2", "cp3")
	ms[2].setJournal(t, agentapi.PhaseRolledBack, agentapi.Pending) // its etcd never stopped
	for _, m := range ms {
		m.serve(t)
	}
	for i, err := range awaitAll(ms[0], ms[1]) {
		if err == nil || errors.Is(err, ErrHold) || !strings.Contains(err.Error(), "decided abort") {
			t.Errorf("%s: %v, want a rollback on abort", ms[i].spec.Member, err)
		}
		if d := ms[i].recorded(t); d != agentapi.Abort {
			t.Errorf("%s recorded %q, want abort", ms[i].spec.Member, d)
		}
	}
}

func TestBarrierAbortsWhenTheCoordinatorRolledBack(t *testing.T) {
	ms := newMembers(t, "cp1", "cp2")
	ms[0].setJournal(t, agentapi.PhaseRolledBack, agentapi.Pending)
	for _, m := range ms {
		m.serve(t)
	}
	if err := ms[1].b.Await(context.Background()); err == nil || errors.Is(err, ErrHold) {
		t.Errorf("participant: %v, want a rollback", err)
	}
}

func TestBarrierAbortsAtTheCoordinatorsTimeout(t *testing.T) {
	ms := newMembers(t, "cp1", "cp2", "cp3")
	// The coordinator's timeout runs out; cp2's own, twice as long, must
	// not before it learns the abort.
	ms[0].spec.Barrier.Timeout = agentapi.Duration(shortBarrierTimeout)
	ms[2].setJournal(t, agentapi.PhaseRunning, agentapi.Pending) // still stopping etcd
	for _, m := range ms {
		m.serve(t)
	}
	errs := awaitAll(ms[0], ms[1])
	for i, err := range errs {
		if err == nil || errors.Is(err, ErrHold) {
			t.Errorf("%s: %v, want a rollback", ms[i].spec.Member, err)
		}
	}
}

// The coordinator recorded commit and died; cp2 learned it and swapped:
// cp3 learns it from cp2.
func TestBarrierLearnsCommitFromAPeer(t *testing.T) {
	ms := newMembers(t, "cp1", "cp2", "cp3")
	if err := ms[0].b.record(agentapi.Commit); err != nil {
		t.Fatal(err)
	}
	ms[1].setJournal(t, agentapi.PhaseRunning, agentapi.Done)
	ms[1].serve(t)
	ms[2].serve(t)
	if err := ms[2].b.Await(context.Background()); err != nil {
		t.Fatalf("cp3: %v, want commit", err)
	}
	if d := ms[2].recorded(t); d != agentapi.Commit {
		t.Errorf("cp3 recorded %q", d)
	}
}

func TestBarrierHoldsWithoutTheCoordinator(t *testing.T) {
	ms := newMembers(t, "cp1", "cp2", "cp3")
	for _, m := range ms {
		m.spec.Barrier.Timeout = agentapi.Duration(shortBarrierTimeout) // the participants' waits run out
	}
	ms[1].serve(t)
	ms[2].serve(t)
	start := time.Now()
	for i, err := range awaitAll(ms[1], ms[2]) {
		if !errors.Is(err, ErrHold) {
			t.Errorf("%s: %v, want a hold", ms[i+1].spec.Member, err)
		}
		if d := ms[i+1].recorded(t); d != "" {
			t.Errorf("%s recorded %q while holding", ms[i+1].spec.Member, d)
		}
	}
	if d := time.Since(start); d < 2*shortBarrierTimeout {
		t.Errorf("held after %s, before twice the coordinator's timeout", d)
	}
}

func TestBarrierResumedCoordinatorKeepsItsDecision(t *testing.T) {
	ms := newMembers(t, "cp1", "cp2")
	for _, m := range ms {
		m.serve(t)
	}
	if err := ms[0].b.record(agentapi.Abort); err != nil {
		t.Fatal(err)
	}
	// Every peer is ready now, but the decision was abort.
	if err := ms[0].b.Await(context.Background()); err == nil || !strings.Contains(err.Error(), "decided abort") {
		t.Errorf("resumed coordinator: %v, want its recorded abort", err)
	}
	if err := ms[0].b.record(agentapi.Commit); err == nil {
		t.Error("a recorded decision was changed")
	}
	if err := ms[1].b.Await(context.Background()); err == nil || errors.Is(err, ErrHold) {
		t.Errorf("participant: %v, want abort", err)
	}
}

func TestBarrierRefusesClientsWithoutTheCA(t *testing.T) {
	ms := newMembers(t, "cp1", "cp2")
	ms[0].serve(t)
	other, err := etcdtest.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.LoadX509KeyPair(other.CertFile, other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, trusted, err := barrierTLS(ms[1].root, ms[1].spec)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ms[0].spec.Barrier.Addr + agentapi.BarrierPath + "r1"
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another CA's": {foreign}, "a peer's": trusted.Certificates} {
		cfg := trusted.Clone()
		cfg.Certificates = certs
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
		resp, err := c.Get(url)
		if resp != nil {
			resp.Body.Close()
		}
		if want := name == "a peer's"; (err == nil && resp.StatusCode == 200) != want {
			t.Errorf("client with %s certificate: %v, want served %v", name, err, want)
		}
		c.CloseIdleConnections()
	}
	cfg := trusted.Clone()
	cfg.MaxVersion = tls.VersionTLS11
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
	if _, err := c.Get(url); err == nil {
		t.Error("TLS 1.1 was served")
	}
}

// A coordinator whose record of commit failed holds, unless the decision
// is surely not on disk: its peers read that file and may have swapped (S9).
func TestBarrierCoordinatorRecordFails(t *testing.T) {
	eio := &os.PathError{Op: "sync", Err: syscall.EIO}
	for _, tt := range []struct {
		name         string
		files        fileOps
		wantHold     bool
		wantRecorded agentapi.Decision
	}{
		{name: "renamed in, the dir fsync failed", files: fileOps{rename: os.Rename, fsync: func(string) error { return eio }},
			wantHold: true, wantRecorded: agentapi.Commit},
		{name: "renamed in, then unreadable", files: fileOps{fsync: fsyncPath, rename: func(o, n string) error {
			if err := os.Rename(o, n); err != nil {
				return err
			}
			return errors.Join(os.WriteFile(n, []byte("{"), 0o600), eio)
		}}, wantHold: true},
		{name: "nothing written", files: fileOps{fsync: fsyncPath, rename: func(string, string) error { return eio }}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ms := newMembers(t, "cp1", "cp2")
			for _, m := range ms {
				m.serve(t)
			}
			ms[0].b.files = tt.files
			err := ms[0].b.Await(context.Background())
			if err == nil || errors.Is(err, ErrHold) != tt.wantHold {
				t.Fatalf("coordinator: %v, want a hold %v", err, tt.wantHold)
			}
			if tt.wantRecorded == "" {
				return
			}
			if d := ms[0].recorded(t); d != tt.wantRecorded {
				t.Errorf("recorded %q, want %q", d, tt.wantRecorded)
			}
			if err := ms[1].b.Await(context.Background()); err != nil {
				t.Errorf("participant: %v, want the commit it read", err)
			}
		})
	}
}

func TestLimitListener(t *testing.T) {
	for _, tt := range []struct {
		name string
		// free lets the waiting Accept go on; wantErr is whether it fails.
		free    func(held net.Conn, l net.Listener)
		wantErr bool
	}{
		{name: "a slot frees when a connection closes", free: func(held net.Conn, _ net.Listener) { held.Close() }},
		{name: "Close ends a waiting Accept", free: func(_ net.Conn, l net.Listener) { l.Close() }, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := limitListener(inner, 2)
			defer l.Close()
			for range 3 {
				c, err := net.Dial("tcp", inner.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			var held []net.Conn
			for range 2 {
				c, err := l.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				held = append(held, c)
			}
			third := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					c.Close()
				}
				third <- err
			}()
			select {
			case err := <-third:
				t.Fatalf("a third connection was accepted (%v) with both slots held", err)
			case <-time.After(100 * time.Millisecond):
			}
			tt.free(held[0], l)
			select {
			case err := <-third:
				if (err != nil) != tt.wantErr {
					t.Errorf("third Accept: %v, want an error %v", err, tt.wantErr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the third Accept still waits")
			}
		})
	}
}

// Clients that connect and say nothing take every slot, are cut off, and
// then a peer is served again (X4).
func TestBarrierCutsOffStalledClients(t *testing.T) {
	ms := newMembers(t, "cp1", "cp2")
	ms[0].serve(t)
	if err := ms[1].b.Serve(); err != nil { // its client asks ms[0]
		t.Fatal(err)
	}
	t.Cleanup(func() { ms[1].b.srv.Close() })
	begin := time.Now()
	var conns []net.Conn
	for range maxBarrierConns + 4 {
		c, err := net.Dial("tcp", ms[0].spec.Barrier.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The server cuts them off after askTimeout; the bounds leave a loaded
	// machine room, and still tell that from never, or from much later.
	for i, c := range conns[:maxBarrierConns] {
		c.SetReadDeadline(time.Now().Add(10 * askTimeout))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stalled connection %d: %v, want it closed by the server", i, err)
		}
	}
	if d := time.Since(begin); d > 5*askTimeout {
		t.Errorf("stalled clients cut off after %s", d)
	}
	for _, c := range conns {
		c.Close()
	}
	st, err := ms[1].b.ask(context.Background(), agentapi.Peer{Member: "cp1", Addr: ms[0].spec.Barrier.Addr})
	if err != nil || st.Member != "cp1" {
		t.Errorf("ask after the stalled clients: %+v, %v", st, err)
	}
}
