package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/compression"
)

// A node-side snapshot: taken from the member next to the agent over the
// node's loopback, as a gRPC stream (grpcsnap.go), and written out in
// large writes as it arrives, optionally compressed, so that the
// bytes leave the node in few, large frames and, compressed, fewer of
// them.

// SnapshotSource is the member to snapshot and etcd's client TLS (node
// paths under Root).
type SnapshotSource struct {
	Root                      string
	Endpoint                  string
	CertFile, KeyFile, CAFile string
}

// SnapshotStats is what a node-side snapshot read and wrote.
type SnapshotStats struct {
	// Read is the snapshot's size as etcd sent it; Written what went out.
	Read, Written int64
	// Version is etcd's storage version of the snapshot ("" before 3.6).
	Version string
	Took    time.Duration
}

// streamBuffer is the size of the writes out of the agent: a snapshot
// arrives in 32 KiB messages, and every write is a frame on the way to
// the workstation.
const streamBuffer = 1 << 20

// StreamSnapshot writes src's snapshot to w as it arrives, compressed
// with compress ("" for none, or one of compression.Names). It checks
// nothing of the bytes: the sha256 trailer is checked where they land.
func StreamSnapshot(ctx context.Context, src SnapshotSource, compress string, w io.Writer) (SnapshotStats, error) {
	start := time.Now()
	if err := compression.Check(compress); err != nil {
		return SnapshotStats{}, err
	}
	tlsCfg, err := clientTLS(src.Root, src.CertFile, src.KeyFile, src.CAFile)
	if err != nil {
		return SnapshotStats{}, err
	}
	if err := src.Reachable(ctx); err != nil {
		return SnapshotStats{}, err
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	snap, err := grpcSnapshot(ctx, hc, src.Endpoint)
	if err != nil {
		return SnapshotStats{}, fmt.Errorf("snapshot of etcd at %s: %w", src.Endpoint, err)
	}
	defer snap.Close()
	out := &countingWriter{w: w}
	bw := bufio.NewWriterSize(out, streamBuffer)
	zw, err := compression.NewWriter(compress, bw)
	if err != nil {
		return SnapshotStats{}, err
	}
	read, err := io.Copy(zw, snap)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	st := SnapshotStats{Read: read, Written: out.n, Version: snap.version, Took: time.Since(start)}
	if err != nil {
		return st, fmt.Errorf("snapshot of etcd at %s, after %d bytes: %w", src.Endpoint, read, err)
	}
	return st, nil
}

// Reachable fails at once when the member does not answer at Endpoint,
// where etcd's client would wait for it to come up.
func (src SnapshotSource) Reachable(ctx context.Context) error {
	addr, err := dialAddr(src.Endpoint)
	if err != nil {
		return err
	}
	conn, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("snapshot of etcd at %s: it does not answer from here (%w): is the member running, and listening there?", src.Endpoint, err)
	}
	return conn.Close()
}

// ServeSnapshot streams src's snapshot, as StreamSnapshot does, to the
// first connection ln accepts within wait, and accepts no other: ln
// listens on the loopback of a pod of its own, which only a
// port-forward reaches. The snapshot starts once the reader is there.
func ServeSnapshot(ctx context.Context, src SnapshotSource, compress string, ln net.Listener, wait time.Duration) (SnapshotStats, error) {
	defer ln.Close()
	if tl, ok := ln.(*net.TCPListener); ok {
		_ = tl.SetDeadline(time.Now().Add(wait))
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	conn, err := ln.Accept()
	stop()
	ln.Close()
	if err != nil {
		if ctx.Err() != nil {
			return SnapshotStats{}, ctx.Err()
		}
		return SnapshotStats{}, fmt.Errorf("nobody connected to %s within %s to read the snapshot: %w", ln.Addr(), wait, err)
	}
	defer conn.Close()
	// A reader gone (Ctrl-C on the workstation) ends the copy at once.
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()
	st, err := StreamSnapshot(ctx, src, compress, conn)
	if err != nil {
		return st, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return st, fmt.Errorf("ending the snapshot's stream: %w", err)
		}
	}
	return st, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
