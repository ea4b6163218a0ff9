package plugin

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodefacts"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// Transports accepted by --transport.
const (
	TransportAuto        = "auto"
	TransportExec        = etcd.TransportExec
	TransportPortForward = etcd.TransportPortForward
)

// GlobalOptions are the flags every subcommand shares, and the clients
// built from them in Complete.
type GlobalOptions struct {
	genericiooptions.IOStreams
	ConfigFlags *genericclioptions.ConfigFlags

	Namespace       string
	HelperNamespace string
	Selector        string
	Transport       string
	Image           string
	CommandTimeout  time.Duration

	// QuietPods stops the lines about helper pods (backup -q sets it).
	QuietPods bool

	// Set by Complete.
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	Executor   exec.Executor
	Forwarder  exec.Forwarder
	// Clients replaces the transport of every policy but Reads and
	// Etcdctl: a test's fake. Nil in a real run.
	Clients etcd.Transport
	// HTTP reads the members' metrics endpoints and NodeFiles reads
	// certificates and data-dir modes on the nodes: the port-forward
	// transport and node pods unless a test set fakes.
	HTTP      doctor.HTTPGetter
	NodeFiles doctor.NodeReader
	// Now is the clock, time.Now unless a test set one.
	Now func() time.Time
	// StdinIsTerminal says whether confirmations can be asked; tests
	// set it.
	StdinIsTerminal func() bool
	// Poll is how often a wait asks the cluster again (0: the
	// operation's default); tests shorten it.
	Poll time.Duration

	session *etcd.Session
	runner  *nodepod.Runner
	warnMu  sync.Mutex
	warned  map[string]bool
}

// AddFlags registers the shared flags on the root command.
func (g *GlobalOptions) AddFlags(cmd *cobra.Command) {
	g.ConfigFlags.AddFlags(cmd.PersistentFlags())
	f := cmd.PersistentFlags()
	f.StringVarP(&g.Namespace, "namespace", "n", discovery.DefaultNamespace, "Namespace of the etcd pods.")
	f.StringVar(&g.HelperNamespace, "helper-namespace", "", "Namespace for the helper pods the plugin starts on nodes (default: the etcd pods' namespace). It must allow privileged pods: label it pod-security.kubernetes.io/enforce=privileged.")
	f.StringVarP(&g.Selector, "selector", "l", discovery.DefaultSelector, "Label selector of the etcd pods.")
	f.StringVar(&g.Transport, "transport", TransportAuto, "How to reach etcd: exec (etcdctl in the etcd container), port-forward (client/v3 over a port-forward, with the TLS material read on the node by a helper pod), or auto. auto: reads (status, health, members, finding --member) use exec and move to port-forward when etcdctl is missing or RBAC denies pods/exec; maintenance (defrag, alarm, compact, move-leader, check, usage) uses port-forward and moves to exec when the helper pod cannot start, as under a NOSPACE alarm. backup's stream and get always use port-forward, ctl always exec.")
	f.StringVar(&g.Image, "image", defaultImage(), "Helper image for node pods (needs sh, cat, sha256sum, mv, sleep; copy-db also stat, and flock if it has it); it must be pullable on the control-plane nodes. Default from $KUBECTL_ETCD_IMAGE if set.")
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

// Session is the command's one view of the cluster: the member list and
// the transports, built on first use and then shared.
func (g *GlobalOptions) Session() *etcd.Session {
	if g.session == nil {
		ex := &etcd.ExecTransport{Exec: g.Executor, Timeout: g.CommandTimeout}
		fwd := &etcd.ForwardTransport{
			Forwarder: g.Forwarder,
			TLS:       &nodefacts.NodeTLSSource{Runner: g.Runner(), Namespace: g.helperNamespace(), Image: g.Image},
			Timeout:   g.CommandTimeout,
		}
		discover := func(ctx context.Context) ([]discovery.Member, error) {
			return discovery.Discover(ctx, g.Client, discovery.Options{Namespace: g.Namespace, Selector: g.Selector, Warn: g.warnOnce})
		}
		g.session = &etcd.Session{Discover: discover, Exec: ex, Forward: fwd, Log: g.ErrOut}
		if g.Transport != TransportAuto {
			g.session.Forced = g.Transport
		}
	}
	return g.session
}

// warnOnce prints a warning to ErrOut the first time it is given: long
// operations discover the members again and again while they wait.
func (g *GlobalOptions) warnOnce(msg string) {
	g.warnMu.Lock()
	defer g.warnMu.Unlock()
	if g.warned[msg] {
		return
	}
	if g.warned == nil {
		g.warned = map[string]bool{}
	}
	g.warned[msg] = true
	fmt.Fprintf(g.ErrOut, "Warning: %s\n", msg)
}

// Members discovers the etcd members (once per command).
func (g *GlobalOptions) Members(ctx context.Context) ([]discovery.Member, error) {
	return g.Session().Members(ctx)
}

// Runner returns the command's node-pod runner, logging to ErrOut.
func (g *GlobalOptions) Runner() *nodepod.Runner {
	if g.runner == nil {
		g.runner = &nodepod.Runner{Client: g.Client, Exec: g.Executor, Log: g.ErrOut}
		if g.QuietPods {
			g.runner.Log = nil
		}
	}
	return g.runner
}

func (g *GlobalOptions) helperNamespace() string {
	if g.HelperNamespace != "" {
		return g.HelperNamespace
	}
	return g.Namespace
}

// TransportFor is how the command reaches etcd under policy p (see
// etcd.Session.Transport), or the test's fake (Clients).
func (g *GlobalOptions) TransportFor(p etcd.Policy) etcd.Transport {
	if g.Clients != nil && p != etcd.Reads && p != etcd.Etcdctl {
		return g.Clients
	}
	return g.Session().Transport(p)
}

// HTTPGetter returns what reads the members' metrics endpoints: the
// test's fake, or a port-forward.
func (g *GlobalOptions) HTTPGetter() doctor.HTTPGetter {
	if g.HTTP != nil {
		return g.HTTP
	}
	return g.Session().Forward
}

// NodeReader returns what reads certificates and directory modes on
// the nodes: the test's fake, or a ProfileFiles node pod.
func (g *GlobalOptions) NodeReader() doctor.NodeReader {
	if g.NodeFiles != nil {
		return g.NodeFiles
	}
	return &nodefacts.NodeFiles{Runner: g.Runner(), Namespace: g.helperNamespace(), Image: g.Image}
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

// ContextName is the kubeconfig context in use, for file names and
// confirmations; "" when it cannot be read.
func (g *GlobalOptions) ContextName() string {
	if g.ConfigFlags == nil {
		return ""
	}
	if c := g.ConfigFlags.Context; c != nil && *c != "" {
		return *c
	}
	raw, err := g.ConfigFlags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return ""
	}
	return raw.CurrentContext
}
