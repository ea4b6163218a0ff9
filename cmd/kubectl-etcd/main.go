// Command kubectl-etcd is the kubectl etcd plugin.
package main

import (
	"context"
	"errors"
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

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/plugin"
)

// gRPC's default buffer pool is process-wide, so the program sets it, at
// initialization as gRPC requires (see etcd.SetGRPCBufferPool).
func init() { etcd.SetGRPCBufferPool() }

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cancelOnSignal(cancel)

	// client-go logs stream teardown noise through klog (for example when
	// Ctrl-C closes an exec); errors reach the user through return values.
	quietKlog()

	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if err := plugin.Execute(ctx, streams); err != nil {
		os.Exit(report(err))
	}
}

// report prints err and returns the exit status: that of the program
// the command ran (kubectl etcd ctl's etcdctl), which has already said
// why, or 1.
func report(err error) int {
	var exit *plugin.ExitStatus
	if errors.As(err, &exit) {
		if err.Error() != exit.Error() {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
		}
		return exit.Code
	}
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	return 1
}

// cancelOnSignal cancels the work on Ctrl-C, SIGTERM or SIGHUP (a closed
// terminal), and keeps catching them afterwards: a second Ctrl-C must not
// kill the process while it deletes its helper pods. That clean-up is
// bounded, so the process still ends.
func cancelOnSignal(cancel context.CancelFunc) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	// A reader that went away (backup - | consumer) must fail the write
	// with EPIPE, so that clean-up runs, rather than kill the process.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	<-sigs
	cancel()
	for s := range sigs {
		fmt.Fprintf(os.Stderr, "%v: still cleaning up (deleting helper pods); this takes at most 30 s\n", s)
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
