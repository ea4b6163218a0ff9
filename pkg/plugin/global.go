package plugin

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// Transports accepted by --transport.
const (
	TransportAuto        = "auto"
	TransportExec        = "exec"
	TransportPortForward = "port-forward"
)

// GlobalOptions are the flags every subcommand shares, and the clients
// built from them in Complete.
type GlobalOptions struct {
	genericiooptions.IOStreams
	ConfigFlags *genericclioptions.ConfigFlags

	Namespace      string
	Selector       string
	Transport      string
	Image          string
	CommandTimeout time.Duration

	// QuietPods stops the lines about helper pods (backup -q sets it).
	QuietPods bool

	// Set by Complete.
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	Executor   exec.Executor
	Forwarder  exec.Forwarder
}

// AddFlags registers the shared flags on the root command.
func (g *GlobalOptions) AddFlags(cmd *cobra.Command) {
	g.ConfigFlags.AddFlags(cmd.PersistentFlags())
	f := cmd.PersistentFlags()
	f.StringVarP(&g.Namespace, "namespace", "n", discovery.DefaultNamespace, "Namespace of the etcd pods (and of the helper pods).")
	f.StringVarP(&g.Selector, "selector", "l", discovery.DefaultSelector, "Label selector of the etcd pods.")
	f.StringVar(&g.Transport, "transport", TransportAuto, "How to reach etcd: exec (etcdctl in the etcd container), port-forward (client/v3 over a port-forward), or auto.")
	f.StringVar(&g.Image, "image", defaultImage(), "Helper image for node pods (needs sh, cat, sha256sum, mv, sleep); it must be pullable on the control-plane nodes. Default from $KUBECTL_ETCD_IMAGE if set.")
	f.DurationVar(&g.CommandTimeout, "command-timeout", 5*time.Second, "Timeout of each etcd request.")
}

// Validate checks the shared flags.
func (g *GlobalOptions) Validate() error {
	switch g.Transport {
	case TransportAuto, TransportExec, TransportPortForward:
	default:
		return fmt.Errorf("unknown --transport %q: use auto, exec or port-forward", g.Transport)
	}
	if g.CommandTimeout <= 0 {
		return fmt.Errorf("--command-timeout must be positive, got %s", g.CommandTimeout)
	}
	return nil
}

// Complete builds the Kubernetes clients once. Tests set Client, Executor
// and Forwarder beforehand, and Complete keeps them.
func (g *GlobalOptions) Complete() error {
	if err := g.Validate(); err != nil {
		return err
	}
	if g.Client != nil {
		return nil
	}
	cfg, err := g.ConfigFlags.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w (set --kubeconfig or KUBECONFIG, or pick a --context)", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	g.RESTConfig, g.Client = cfg, cs
	g.Executor = &exec.RemoteExecutor{Config: cfg, Client: cs.CoreV1().RESTClient()}
	g.Forwarder = &exec.RemoteForwarder{Config: cfg, Client: cs.CoreV1().RESTClient()}
	return nil
}

// Members discovers the etcd members.
func (g *GlobalOptions) Members(ctx context.Context) ([]discovery.Member, error) {
	return discovery.Discover(ctx, g.Client, discovery.Options{Namespace: g.Namespace, Selector: g.Selector})
}

// Runner returns the node-pod runner, logging to ErrOut.
func (g *GlobalOptions) Runner() *nodepod.Runner {
	r := &nodepod.Runner{Client: g.Client, Exec: g.Executor, Log: g.ErrOut}
	if g.QuietPods {
		r.Log = nil
	}
	return r
}

// ForwardDialer returns the port-forward transport.
func (g *GlobalOptions) ForwardDialer() *etcd.ForwardDialer {
	return &etcd.ForwardDialer{
		Forwarder: g.Forwarder,
		TLS:       &etcd.NodeTLSSource{Runner: g.Runner(), Namespace: g.Namespace, Image: g.Image},
		Timeout:   g.CommandTimeout,
	}
}

// Dialer returns the transport --transport asks for.
func (g *GlobalOptions) Dialer() etcd.Dialer {
	ex := &etcd.ExecDialer{Exec: g.Executor, Timeout: g.CommandTimeout}
	switch g.Transport {
	case TransportExec:
		return ex
	case TransportPortForward:
		return g.ForwardDialer()
	}
	return &etcd.AutoDialer{Exec: ex, Forward: g.ForwardDialer(), Log: g.ErrOut}
}

// ImageEnv overrides the default helper image, for clusters that can only
// pull from a private registry.
const ImageEnv = "KUBECTL_ETCD_IMAGE"

func defaultImage() string {
	if v := os.Getenv(ImageEnv); v != "" {
		return v
	}
	return nodepod.DefaultImage
}
