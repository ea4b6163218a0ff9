package exec

import (
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"k8s.io/streaming/pkg/httpstream"
)

// readChunk is the most one read of the data stream takes: gRPC reads
// 32 KiB at a time, and a frame longer than that comes in two reads.
const readChunk = 32 << 10

// streamConn is a forwarded connection as a net.Conn. A stream cannot be
// interrupted, so deadlines work around it: one goroutine reads the data
// stream into two alternating buffers and each Write runs apart, and
// Read and Write wait for them, for their deadline or for Close. A
// stalled tunnel then fails a reader in bounded time instead of never.
type streamConn struct {
	pod       PodRef
	port      int
	conn      httpstream.Connection
	errStream httpstream.Stream
	data      httpstream.Stream
	errDone   chan struct{}
	remoteErr error // set before errDone closes

	closed    chan struct{}
	closeOnce sync.Once

	chunks chan chunk  // filled by pump, one at a time
	free   chan []byte // buffers Read has finished with
	rmu    sync.Mutex  // guards the fields below, for one Read at a time
	cur    []byte      // the buffer pending points into
	unread []byte
	rerr   error // the data stream's end, once pending is drained
	rdl    deadline

	wmu  sync.Mutex // one Write at a time; guards wbuf and werr
	wbuf []byte
	werr error // sticky: a Write that timed out may still land
	wdl  deadline
}

type chunk struct {
	buf []byte
	n   int
	err error
}

func newStreamConn(s *session) *streamConn {
	c := &streamConn{
		pod: s.pod, port: s.port, conn: s.conn,
		errDone: make(chan struct{}),
		closed:  make(chan struct{}),
		chunks:  make(chan chunk),
		free:    make(chan []byte, 2),
		rdl:     newDeadline(),
		wdl:     newDeadline(),
	}
	c.free <- make([]byte, readChunk)
	c.free <- make([]byte, readChunk)
	return c
}

// pump reads the data stream ahead of Read by at most two buffers.
func (c *streamConn) pump() {
	for {
		var buf []byte
		select {
		case buf = <-c.free:
		case <-c.closed:
			return
		}
		n, err := c.data.Read(buf)
		if err != nil {
			err = c.remoteReason(err)
		}
		select {
		case c.chunks <- chunk{buf, n, err}:
		case <-c.closed:
			return
		}
		if err != nil {
			return
		}
	}
}

// remoteReason prefers the kubelet's message: the data stream ends when
// the kubelet gives up on the port, and its reason comes on the error
// stream, shortly after or not at all.
func (c *streamConn) remoteReason(err error) error {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.errDone:
		if c.remoteErr != nil {
			return c.remoteErr
		}
	case <-t.C:
	case <-c.closed:
	}
	return err
}

func (c *streamConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	select {
	case <-c.closed:
		return 0, c.opError("read", net.ErrClosed)
	default:
	}
	for len(c.unread) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if c.cur != nil {
			c.free <- c.cur // never blocks: there are only two buffers
			c.cur = nil
		}
		expired, changed := c.rdl.wait()
		if isClosed(expired) {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		select {
		case ch := <-c.chunks:
			c.cur, c.unread, c.rerr = ch.buf, ch.buf[:ch.n], ch.err
		case <-expired:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case <-changed:
		case <-c.closed:
			return 0, c.opError("read", net.ErrClosed)
		}
	}
	n := copy(p, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}

// Write copies p, since the write it starts may outlive a deadline.
// Like crypto/tls, a write that timed out fails every later one: its
// bytes may still go out, so the stream's position is unknown.
func (c *streamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if expired, _ := c.wdl.wait(); isClosed(expired) {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	buf := append(c.wbuf[:0], p...)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := c.data.Write(buf)
		done <- result{n, err}
	}()
	for {
		expired, changed := c.wdl.wait()
		select {
		case r := <-done:
			c.wbuf = buf
			return r.n, r.err
		case <-expired:
			c.werr = c.opError("write", os.ErrDeadlineExceeded)
			return 0, c.werr
		case <-changed:
		case <-c.closed:
			c.werr = c.opError("write", net.ErrClosed)
			return 0, c.werr
		}
	}
}

// opError is what net.Conn users check: os.ErrDeadlineExceeded inside
// makes it a net.Error whose Timeout is true.
func (c *streamConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "port-forward", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Close resets both streams. Resetting writes a frame on the session,
// which a stalled tunnel can hold up, so that happens apart: Close (and
// gRPC's shutdown) never hangs. Pending Reads and Writes return at once.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		go func() {
			c.data.Reset()
			c.errStream.Reset()
			c.conn.RemoveStreams(c.errStream, c.data)
		}()
	})
	return nil
}

func (c *streamConn) LocalAddr() net.Addr { return forwardAddr("kubectl-etcd") }
func (c *streamConn) RemoteAddr() net.Addr {
	return forwardAddr(c.pod.String() + ":" + strconv.Itoa(c.port))
}

func (c *streamConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}
func (c *streamConn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *streamConn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

type forwardAddr string

func (forwardAddr) Network() string  { return "port-forward" }
func (a forwardAddr) String() string { return string(a) }

// deadline is one direction's deadline, as net.Pipe keeps it, plus a
// channel that tells a waiter already blocked that it was moved: a
// deadline applies to pending I/O too, and a later one re-arms it.
type deadline struct {
	mu      *sync.Mutex
	timer   *time.Timer
	expired chan struct{} // closed when the deadline passes
	changed chan struct{} // closed and replaced by every set
}

func newDeadline() deadline {
	return deadline{mu: new(sync.Mutex), expired: make(chan struct{}), changed: make(chan struct{})}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	close(d.changed)
	d.changed = make(chan struct{})
	// A fresh channel each time: a stopped timer's callback may still
	// close the old one, which no longer matters to anyone.
	expired := make(chan struct{})
	d.expired = expired
	switch {
	case t.IsZero():
	case time.Until(t) <= 0:
		close(expired)
	default:
		d.timer = time.AfterFunc(time.Until(t), func() { close(expired) })
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (d *deadline) wait() (expired, changed <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired, d.changed
}
