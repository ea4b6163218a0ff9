package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/bounded"
)

// ExecTransport runs etcdctl inside each member's etcd container, with the
// endpoint and certificate flags taken from the member's pod spec. No
// shell is used: 3.6+ etcd images have none.
type ExecTransport struct {
	Exec    exec.Executor
	Timeout time.Duration // --command-timeout, default 5s
}

// Name implements Transport.
func (d *ExecTransport) Name() string { return "exec" }

// Prepare implements Transport: exec needs no set-up.
func (d *ExecTransport) Prepare(context.Context, []discovery.Member) error { return nil }

// Client implements Transport. It does no I/O.
func (d *ExecTransport) Client(_ context.Context, m discovery.Member) (Client, error) {
	if err := CheckRunning(m); err != nil {
		return nil, err // never a nil *execClient in a non-nil Client
	}
	t := d.Timeout
	if t == 0 {
		t = 5 * time.Second
	}
	return &execClient{d: d, m: m, timeout: t}, nil
}

type execClient struct {
	d       *ExecTransport
	m       discovery.Member
	timeout time.Duration
}

// Args is the etcdctl invocation for member m, without the subcommand;
// a zero timeout leaves etcdctl's own.
func Args(m discovery.Member, timeout time.Duration) []string {
	args := []string{"etcdctl", "--endpoints=" + m.LocalClientURL()}
	if timeout > 0 {
		args = append(args, "--command-timeout="+timeout.String())
	}
	if m.Client.TrustedCAFile != "" {
		args = append(args, "--cacert="+m.Client.TrustedCAFile)
	}
	if m.Client.CertFile != "" && m.Client.KeyFile != "" {
		args = append(args, "--cert="+m.Client.CertFile, "--key="+m.Client.KeyFile)
	}
	return args
}

const maxEtcdctlOutput = 8 << 20

// run executes etcdctl with sub and decodes its JSON output into v. A
// non-zero exit still decodes what was printed, since etcdctl prints the
// per-endpoint result before failing. etcd's errors that etcdctl printed
// are made the client's again (errors.Is(err, rpctypes.ErrCompacted)...),
// their text unchanged, as the operations tell them apart.
func (c *execClient) run(ctx context.Context, v any, sub ...string) error {
	return typed(c.runUntyped(ctx, v, sub...))
}

func (c *execClient) runUntyped(ctx context.Context, v any, sub ...string) error {
	_, err := c.runStderr(ctx, v, sub...)
	return err
}

// runStderr is runUntyped that also returns what etcdctl printed on
// stderr, where the --cluster verbs name the members that failed.
func (c *execClient) runStderr(ctx context.Context, v any, sub ...string) (string, error) {
	args := append(Args(c.m, c.timeout), "-w", "json")
	args = append(args, sub...)
	// JSON answers are small; a member list of hundreds of members is
	// well under 1 MiB.
	stdout, stderr := bounded.New(maxEtcdctlOutput), bounded.New(64<<10)
	// etcdctl bounds each request; this bounds a hung exec stream too.
	ctx, cancel := context.WithTimeout(ctx, 2*c.timeout+10*time.Second)
	defer cancel()
	ref := exec.PodRef{Namespace: c.m.Namespace, Name: c.m.Pod, Container: c.m.Container}
	err := c.d.Exec.Exec(ctx, ref, args, nil, stdout, stderr)
	if stdout.Exceeded() {
		return "", fmt.Errorf("etcdctl %s in %s printed %w; is this an etcd container?", strings.Join(sub, " "), c.m.Pod, &bounded.ErrTooLarge{Max: maxEtcdctlOutput})
	}
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("%w (etcdctl is missing from image %s; use --transport=port-forward)", err, c.m.Image)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return "", err
	}
	// A failed endpoint prints an empty list ([] in 3.5, null in 3.6+)
	// before etcdctl exits 1: the error is then on stderr.
	printed := strings.TrimSpace(stdout.String())
	emptyFailure := err != nil && (printed == "[]" || printed == "null")
	if printed != "" && v != nil && !emptyFailure {
		if jerr := json.Unmarshal(stdout.Bytes(), v); jerr == nil {
			return stderr.String(), nil
		} else if err == nil {
			return "", fmt.Errorf("cannot parse etcdctl %s output: %w", strings.Join(sub, " "), jerr)
		}
	}
	if err != nil {
		return stderr.String(), fmt.Errorf("etcdctl %s in %s: %s", strings.Join(sub, " "), c.m.Pod, firstLine(stderr.String(), err))
	}
	return stderr.String(), nil
}

func firstLine(stderr string, fallback error) string {
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "{") {
			return l
		}
	}
	return fallback.Error()
}

func (c *execClient) MemberList(ctx context.Context) (uint64, []MemberInfo, error) {
	var resp pb.MemberListResponse
	if err := c.run(ctx, &resp, "member", "list"); err != nil {
		return 0, nil, err
	}
	return clusterIDOf(resp.Header), fromPBMembers(resp.Members), nil
}

type endpointStatus struct {
	Endpoint string             `json:"Endpoint"`
	Status   *pb.StatusResponse `json:"Status"`
}

func (c *execClient) Status(ctx context.Context) (*Status, error) {
	var resp []endpointStatus
	if err := c.run(ctx, &resp, "endpoint", "status"); err != nil {
		return nil, err
	}
	if len(resp) != 1 || resp[0].Status == nil {
		return nil, fmt.Errorf("etcdctl endpoint status in %s returned %d results, want 1", c.m.Pod, len(resp))
	}
	return fromPBStatus(resp[0].Status), nil
}

type endpointHealth struct {
	Endpoint string `json:"endpoint"`
	Health   bool   `json:"health"`
	Took     string `json:"took"`
	Error    string `json:"error,omitempty"`
}

func (c *execClient) Health(ctx context.Context) (time.Duration, error) {
	var resp []endpointHealth
	if err := c.run(ctx, &resp, "endpoint", "health"); err != nil {
		return 0, err
	}
	if len(resp) != 1 {
		return 0, fmt.Errorf("etcdctl endpoint health in %s returned %d results, want 1", c.m.Pod, len(resp))
	}
	took, _ := time.ParseDuration(resp[0].Took)
	if !resp[0].Health {
		return took, errors.New(orUnhealthy(resp[0].Error))
	}
	return took, nil
}

// StatusAll implements Client with one etcdctl run: endpoint status
// --cluster asks each member of the list in turn, prints the answers as
// JSON, and names each member that failed on stderr.
func (c *execClient) StatusAll(ctx context.Context) ([]EndpointStatus, error) {
	var resp []endpointStatus
	stderr, err := c.runStderr(ctx, &resp, "endpoint", "status", "--cluster")
	if err != nil {
		return nil, typed(err)
	}
	var out []EndpointStatus
	for _, r := range resp {
		if r.Status != nil {
			out = append(out, EndpointStatus{Endpoint: r.Endpoint, Status: fromPBStatus(r.Status)})
		}
	}
	for _, l := range strings.Split(stderr, "\n") {
		if m := failedStatus.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			out = append(out, EndpointStatus{Endpoint: m[1], Err: errors.New(m[2])})
		}
	}
	return out, nil
}

// failedStatus is how etcdctl 3.5 to 3.7 name an endpoint that did not
// answer endpoint status.
var failedStatus = regexp.MustCompile(`^Failed to get the status of endpoint (\S+) \((.*)\)$`)

// HealthAll implements Client with one etcdctl run: endpoint health
// --cluster checks every member of the list at once and prints a row
// for each, healthy or not.
func (c *execClient) HealthAll(ctx context.Context) ([]EndpointHealth, error) {
	var resp []endpointHealth
	if _, err := c.runStderr(ctx, &resp, "endpoint", "health", "--cluster"); err != nil {
		return nil, typed(err)
	}
	out := make([]EndpointHealth, 0, len(resp))
	for _, r := range resp {
		took, _ := time.ParseDuration(r.Took)
		h := EndpointHealth{Endpoint: r.Endpoint, Took: took}
		if !r.Health {
			h.Err = errors.New(orUnhealthy(r.Error))
		}
		out = append(out, h)
	}
	return out, nil
}

func orUnhealthy(msg string) string {
	if msg == "" {
		return "unhealthy"
	}
	return msg
}

func (c *execClient) AlarmList(ctx context.Context) ([]Alarm, error) {
	var resp pb.AlarmResponse
	if err := c.run(ctx, &resp, "alarm", "list"); err != nil {
		return nil, err
	}
	return fromPBAlarms(resp.Alarms), nil
}

func (c *execClient) Close() error { return nil }

func clusterIDOf(h *pb.ResponseHeader) uint64 {
	if h == nil {
		return 0
	}
	return h.ClusterId
}

func fromPBMembers(ms []*pb.Member) []MemberInfo {
	out := make([]MemberInfo, 0, len(ms))
	for _, m := range ms {
		out = append(out, MemberInfo{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out
}

func fromPBStatus(s *pb.StatusResponse) *Status {
	st := &Status{
		Version:          s.Version,
		StorageVersion:   s.StorageVersion,
		DBSize:           s.DbSize,
		DBSizeInUse:      s.DbSizeInUse,
		DBSizeQuota:      s.DbSizeQuota,
		Leader:           s.Leader,
		RaftTerm:         s.RaftTerm,
		RaftIndex:        s.RaftIndex,
		RaftAppliedIndex: s.RaftAppliedIndex,
		IsLearner:        s.IsLearner,
		Errors:           s.Errors,
	}
	if s.Header != nil {
		st.ClusterID = s.Header.ClusterId
		st.MemberID = s.Header.MemberId
		st.Revision = s.Header.Revision
	}
	return st
}

func fromPBAlarms(as []*pb.AlarmMember) []Alarm {
	out := make([]Alarm, 0, len(as))
	for _, a := range as {
		if a.Alarm == pb.AlarmType_NONE {
			continue
		}
		out = append(out, Alarm{MemberID: a.MemberID, Type: a.Alarm.String()})
	}
	return out
}

// CheckRunning is nil when m's pod runs, else why not and what to look at.
func CheckRunning(m discovery.Member) error {
	if m.Running {
		return nil
	}
	return fmt.Errorf("member %s: pod %s/%s is not running: %s; check: kubectl -n %s describe pod %s",
		m.Name, m.Namespace, m.Pod, m.NotRunningReason, m.Namespace, m.Pod)
}
