// Command kubectl-etcd-agent is the node side of kubectl etcd: the plugin
// uploads it into a privileged pod on each control-plane node, where it
// runs long operations (restore) that must outlive the API server.
//
// Build it static and small: CGO_ENABLED=0 go build -trimpath -ldflags=-s -w.
package main

import (
	"context"
	"os"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentcli"
)

func main() {
	// No signal handling: a killed agent stops between journal saves, as a
	// crash does, and `restore run` resumes it. A cancelled context would
	// instead start a rollback whose waits could not finish.
	os.Exit(agentcli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
