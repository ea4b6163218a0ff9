package agentcli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// snapshotCommand is `snapshot`: the member's snapshot to stdout, and
// what was read and written to stderr as a last JSON line.
func snapshotCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var src agent.SnapshotSource
	var compress, listen string
	var wait time.Duration
	fs := flag.NewFlagSet("kubectl-etcd-agent snapshot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&src.Root, "root", "/", "where the node's root is mounted")
	fs.StringVar(&src.Endpoint, "endpoint", "", "the member's client URL on this node, such as https://127.0.0.1:2379")
	fs.StringVar(&src.CertFile, "cert", "", "etcd's client certificate (a node path)")
	fs.StringVar(&src.KeyFile, "key", "", "its key")
	fs.StringVar(&src.CAFile, "cacert", "", "etcd's CA")
	fs.StringVar(&compress, "compress", "", "s2 or zstd, or empty for the snapshot as etcd sends it")
	fs.StringVar(&listen, "listen", "", "serve the snapshot to the first connection on this address (a pod's loopback, which a port-forward reaches), not on stdout")
	fs.DurationVar(&wait, "accept-timeout", time.Minute, "with --listen, how long to wait for the connection")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if src.Endpoint == "" || src.CertFile == "" || src.KeyFile == "" || src.CAFile == "" {
		return fmt.Errorf("%w: snapshot needs --endpoint, --cert, --key and --cacert", errUsage)
	}
	var st agent.SnapshotStats
	var err error
	if listen == "" {
		st, err = agent.StreamSnapshot(ctx, src, compress, stdout)
	} else {
		st, err = serveSnapshot(ctx, src, compress, listen, wait, stderr)
	}
	if err != nil {
		return err
	}
	b, err := json.Marshal(agentapi.SnapshotStreamed{Read: st.Read, Written: st.Written, Version: st.Version, Compression: compress, Millis: st.Took.Milliseconds()})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stderr, "%s\n", b)
	return err
}

// serveSnapshot checks that etcd answers, listens, says so on stderr, and
// serves the snapshot to the first connection.
func serveSnapshot(ctx context.Context, src agent.SnapshotSource, compress, addr string, wait time.Duration, stderr io.Writer) (agent.SnapshotStats, error) {
	if err := src.Reachable(ctx); err != nil {
		return agent.SnapshotStats{}, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return agent.SnapshotStats{}, fmt.Errorf("listening for the snapshot's reader: %w", err)
	}
	b, err := json.Marshal(agentapi.SnapshotListening{Listening: ln.Addr().String()})
	if err == nil {
		_, err = fmt.Fprintf(stderr, "%s\n", b)
	}
	if err != nil {
		ln.Close()
		return agent.SnapshotStats{}, err
	}
	return agent.ServeSnapshot(ctx, src, compress, ln, wait)
}
