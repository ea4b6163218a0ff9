package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// windowSize is the gRPC flow-control window. Through a port-forward a
// window update crosses the API server, the kubelet and the container
// runtime before etcd may send more, so the window sets a snapshot's
// speed: on the test machine 1 MiB gave 10.1 s for 776 MiB, 4 MiB 9.4 s
// and 16 MiB 7.5 s. It also bounds what the plugin buffers: peak RSS was
// 84, 89 and 105 MiB. 4 MiB keeps a backup under 100 MiB.
var windowSize int32 = 4 << 20

// SetGRPCBufferPool gives gRPC's process-wide default buffer pool a
// 64 KiB tier besides its own. Without it, each snapshot message (a
// little over 32 KiB) is rounded up to a 1 MiB buffer and zeroed, which
// cost a backup an eighth of the plugin's CPU. The proto codec always
// takes that default pool, and gRPC allows setting it only at
// initialization, before any client or server exists: a program calls
// this from its main package's init, never a library.
func SetGRPCBufferPool() {
	experimental.SetDefaultBufferPool(mem.NewTieredBufferPool(256, 4<<10, 16<<10, 32<<10, 64<<10, 1<<20))
}

// ForwardTransport port-forwards to each member's client port and speaks
// client/v3 with the TLS material the pod spec names.
type ForwardTransport struct {
	Forwarder exec.Forwarder
	TLS       TLSSource
	Timeout   time.Duration // per call, default 5s
}

// Name implements Transport.
func (d *ForwardTransport) Name() string { return "port-forward" }

// Prepare reads the TLS material once for all members, before they are
// dialled in parallel, so that one bad node cannot hold the others up.
func (d *ForwardTransport) Prepare(ctx context.Context, members []discovery.Member) error {
	p, ok := d.TLS.(interface {
		Prefetch(context.Context, []discovery.Member) (*Material, error)
	})
	if !ok || len(members) == 0 || !members[0].TLS() {
		return nil
	}
	_, err := p.Prefetch(ctx, members)
	return err
}

// dial opens a client/v3 client to m through a port-forward.
func (d *ForwardTransport) dial(ctx context.Context, m discovery.Member) (*V3Conn, error) {
	if err := CheckRunning(m); err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if m.TLS() {
		mat, err := d.TLS.Material(ctx, m)
		if err != nil {
			return nil, err
		}
		if tlsCfg, err = mat.ClientConfig(m.ServerNames()); err != nil {
			return nil, err
		}
	}
	ref := exec.PodRef{Namespace: m.Namespace, Name: m.Pod, Container: m.Container}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	// The wait for the forward to be ready is bounded; the forward itself
	// lives until stop.
	fctx, cancel := context.WithTimeout(ctx, 2*timeout)
	dial, stop, err := d.Forwarder.Forward(fctx, ref, m.ClientPort())
	cancel()
	if err != nil {
		return nil, fmt.Errorf("port-forward to member %s (%s): %w", m.Name, ref, err)
	}
	scheme := "http://"
	if tlsCfg != nil {
		scheme = "https://"
	}
	// The address only names the member: every connection is dialled
	// through the forward.
	addr := net.JoinHostPort(m.Pod, strconv.Itoa(m.ClientPort()))
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{scheme + addr},
		TLS:         tlsCfg,
		DialTimeout: timeout,
		Logger:      zap.NewNop(),
		Context:     ctx,
		DialOptions: []grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return dial(ctx) }),
			// A fixed window bounds what a snapshot stream buffers in
			// memory; gRPC's adaptive one would grow to 16 MiB.
			grpc.WithInitialWindowSize(windowSize),
			grpc.WithInitialConnWindowSize(windowSize),
			// A tunnel can die without a reset (a kubelet or API server
			// restart, a dropped NAT entry); pings notice that within
			// Time+Timeout, 20 s, while a call or a snapshot is open.
			// 10 s is gRPC's floor for Time and above etcd's
			// --grpc-keepalive-min-time (5 s). Pings only with streams
			// open: etcd's server permits none on an idle connection
			// and would close it for "too_many_pings".
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 10 * time.Second}),
		},
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("connecting to member %s through a port-forward: %w", m.Name, err)
	}
	return &V3Conn{Client: cli, Timeout: timeout, stop: stop}, nil
}

// V3Conn is the Client over client/v3. It is exported so that tests and the
// backup command can use it with any client.
type V3Conn struct {
	Client  *clientv3.Client
	Timeout time.Duration
	stop    func()
}

// NewV3Conn wraps an existing client.
func NewV3Conn(cli *clientv3.Client, timeout time.Duration) *V3Conn {
	return &V3Conn{Client: cli, Timeout: timeout}
}

func (c *V3Conn) endpoint() string { return c.Client.Endpoints()[0] }

func (c *V3Conn) call(ctx context.Context) (context.Context, context.CancelFunc) {
	t := c.Timeout
	if t == 0 {
		t = 5 * time.Second
	}
	return context.WithTimeout(ctx, t)
}

func (c *V3Conn) MemberList(ctx context.Context) (uint64, []MemberInfo, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Client.MemberList(ctx)
	if err != nil {
		return 0, nil, explainRPC(err)
	}
	return clusterIDOf(resp.Header), fromPBMembers(resp.Members), nil
}

func (c *V3Conn) Status(ctx context.Context) (*Status, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Client.Status(ctx, c.endpoint())
	if err != nil {
		return nil, explainRPC(err)
	}
	return fromPBStatus((*pb.StatusResponse)(resp)), nil
}

// StatusAll implements Client: through a port-forward to one member,
// the others' client URLs are out of reach.
func (c *V3Conn) StatusAll(context.Context) ([]EndpointStatus, error) {
	return nil, acrossForward("read every member's status through one")
}

// HealthAll implements Client, as StatusAll.
func (c *V3Conn) HealthAll(context.Context) ([]EndpointHealth, error) {
	return nil, acrossForward("check every member's health through one")
}

func acrossForward(op string) error {
	return unsupported("port-forward", op, "a port-forward reaches one member only", "ask each member through its own port-forward")
}

func (c *V3Conn) Health(ctx context.Context) (time.Duration, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	start := time.Now()
	_, err := c.Client.Get(ctx, "health")
	took := time.Since(start)
	// A permission error still proves that raft answered, as in etcdctl.
	if err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		return took, explainRPC(err)
	}
	alarms, err := c.alarms(ctx)
	if err != nil {
		return took, err
	}
	if len(alarms) > 0 {
		return took, fmt.Errorf("active alarm(s): %s", alarmSummary(alarms))
	}
	return took, nil
}

// alarms lists the alarms, with the read path's errors (AlarmList has the
// maintenance commands').
func (c *V3Conn) alarms(ctx context.Context) ([]Alarm, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Client.AlarmList(ctx)
	if err != nil {
		return nil, explainRPC(err)
	}
	return fromPBAlarms(resp.Alarms), nil
}

// Snapshot implements Client. It has no call timeout: a snapshot
// takes as long as the database is large; cancel ctx to stop it.
func (c *V3Conn) Snapshot(ctx context.Context) (*SnapshotStream, error) {
	resp, err := c.Client.SnapshotWithVersion(ctx)
	if err != nil {
		return nil, explainRPC(err)
	}
	return &SnapshotStream{ReadCloser: resp.Snapshot, Version: resp.Version}, nil
}

func (c *V3Conn) Close() error {
	err := c.Client.Close()
	if c.stop != nil {
		c.stop()
	}
	return err
}

func alarmSummary(as []Alarm) string {
	s := ""
	for i, a := range as {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s on %s", a.Type, HexID(a.MemberID))
	}
	return s
}

// explainRPC adds a hint to the transport errors users meet.
func explainRPC(err error) error {
	var uerr x509.UnknownAuthorityError
	switch {
	case errors.As(err, &uerr):
		return fmt.Errorf("%w: the member's certificate is not signed by the CA that the pod spec names (--trusted-ca-file)", err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("member did not answer in time: %w", err)
	}
	return err
}
