package agentcli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// snapshotCommand is `snapshot`: the member's snapshot to stdout, and
// what was read and written to stderr as a last JSON line.
func snapshotCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var src agent.SnapshotSource
	var compress string
	fs := flag.NewFlagSet("kubectl-etcd-agent snapshot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&src.Root, "root", "/", "where the node's root is mounted")
	fs.StringVar(&src.Endpoint, "endpoint", "", "the member's client URL on this node, such as https://127.0.0.1:2379")
	fs.StringVar(&src.CertFile, "cert", "", "etcd's client certificate (a node path)")
	fs.StringVar(&src.KeyFile, "key", "", "its key")
	fs.StringVar(&src.CAFile, "cacert", "", "etcd's CA")
	fs.StringVar(&compress, "compress", "", "zstd, or empty for the snapshot as etcd sends it")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if src.Endpoint == "" || src.CertFile == "" || src.KeyFile == "" || src.CAFile == "" {
		return fmt.Errorf("%w: snapshot needs --endpoint, --cert, --key and --cacert", errUsage)
	}
	st, err := agent.StreamSnapshot(ctx, src, compress, stdout)
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
