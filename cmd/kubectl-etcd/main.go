// Command kubectl-etcd is the kubectl etcd plugin.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	// Auth plugins for OIDC, GKE, AKS and exec-based kubeconfigs.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/klog/v2"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/plugin"
)

func main() {
	// Ctrl-C cancels the context; every helper pod is then deleted on the
	// way out. A second Ctrl-C kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()

	// client-go logs stream teardown noise through klog (for example when
	// Ctrl-C closes an exec); errors reach the user through return values.
	quietKlog()

	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if err := plugin.NewCmdEtcd(streams).ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// quietKlog sends klog nowhere: client-go reports stream teardown (Ctrl-C,
// a closed port-forward) through it, while real errors reach the user
// through return values.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}
