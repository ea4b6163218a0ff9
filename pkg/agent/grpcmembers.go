package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The membership calls a replace and a recovery make from the node
// (etcdctl member list|remove|add|promote, endpoint status), over the
// same gRPC wire as the snapshot: one way to speak to etcd in the agent,
// and none that needs etcd's optional JSON gateway.

// GWMember is a member as etcd lists it.
type GWMember struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// GWStatus is a member's status as etcd reports it.
type GWStatus struct {
	MemberID  uint64
	Leader    uint64
	RaftIndex uint64
	IsLearner bool
}

// Members is what replace asks of the cluster: the calls of etcdctl
// member list|remove|add|promote and endpoint status.
type Members interface {
	List(ctx context.Context) ([]GWMember, error)
	Remove(ctx context.Context, id uint64) error
	AddLearner(ctx context.Context, peerURLs []string) (uint64, error)
	Promote(ctx context.Context, id uint64) error
	Status(ctx context.Context, endpoint string) (*GWStatus, error)
}

// clientTLS reads etcd's client TLS files (node paths under root).
func clientTLS(root, certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(under(root, certFile), under(root, keyFile))
	if err != nil {
		return nil, fmt.Errorf("etcd's client certificate: %w", err)
	}
	ca, err := os.ReadFile(under(root, caFile))
	if err != nil {
		return nil, fmt.Errorf("etcd's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("etcd's CA %s holds no PEM certificate", caFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// GRPC implements Members against etcd's client URLs; Endpoints are tried
// in order until one answers.
type GRPC struct {
	Endpoints []string
	Client    *http.Client
}

// NewGRPC reads etcd's client TLS files (node paths under root).
func NewGRPC(root string, endpoints []string, certFile, keyFile, caFile string) (*GRPC, error) {
	cfg, err := clientTLS(root, certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	return &GRPC{Endpoints: endpoints, Client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

// ErrRefused marks an answer from etcd (a refusal), not a failure to
// reach it: another endpoint would answer the same.
var ErrRefused = errors.New("etcd refused")

// gRPC status codes that another member may answer otherwise.
const (
	codeDeadlineExceeded = "4"
	codeUnavailable      = "14"
)

// unary calls method at endpoint with req and returns the answer.
func (g *GRPC) unary(ctx context.Context, endpoint, method string, req []byte) ([]byte, error) {
	resp, err := grpcCall(ctx, g.Client, endpoint, method, req)
	if err == nil {
		defer resp.Body.Close()
		var msg []byte
		br := bufio.NewReader(resp.Body)
		if msg, err = readMessage(br, nil); err == nil {
			if _, err = io.Copy(io.Discard, br); err == nil {
				err = callEnded(resp)
			}
		} else if err == io.EOF {
			if err = callEnded(resp); err == nil {
				err = errors.New("the answer holds no message")
			}
		}
		if err == nil {
			return msg, nil
		}
	}
	var se *statusError
	if errors.As(err, &se) && se.code != codeUnavailable && se.code != codeDeadlineExceeded &&
		!strings.Contains(se.msg, "no leader") && !strings.Contains(se.msg, "leader changed") {
		return nil, fmt.Errorf("%s%s: %w: %s", endpoint, method, ErrRefused, se.msg)
	}
	return nil, fmt.Errorf("%s%s: %w", endpoint, method, err) // this member cannot answer now; another may
}

// anyEndpoint tries each endpoint until one answers; a refusal is final.
func (g *GRPC) anyEndpoint(ctx context.Context, method string, req []byte) ([]byte, error) {
	var errs []error
	for _, ep := range g.Endpoints {
		out, err := g.unary(ctx, ep, method, req)
		if err == nil || errors.Is(err, ErrRefused) {
			return out, err
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, errors.New("no etcd endpoint to ask")
	}
	return nil, errors.Join(errs...)
}

// protoFields walks a message's fields; f gets each field's number, wire type
// and value bytes (a varint's decoded value in v).
func protoFields(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, bs); err != nil {
			return err
		}
	}
	return nil
}

// decodeMember decodes etcdserverpb.Member.
func decodeMember(b []byte) (GWMember, error) {
	var m GWMember
	err := protoFields(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.ID = v
		case num == 2 && typ == protowire.BytesType:
			m.Name = string(bs)
		case num == 3 && typ == protowire.BytesType:
			m.PeerURLs = append(m.PeerURLs, string(bs))
		case num == 4 && typ == protowire.BytesType:
			m.ClientURLs = append(m.ClientURLs, string(bs))
		case num == 5 && typ == protowire.VarintType:
			m.IsLearner = v != 0
		}
		return nil
	})
	return m, err
}

func idRequest(id uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), id)
}

// List is `member list`, linearizable: a member just removed or added is
// seen as such.
func (g *GRPC) List(ctx context.Context) ([]GWMember, error) {
	req := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1) // linearizable
	out, err := g.anyEndpoint(ctx, "/etcdserverpb.Cluster/MemberList", req)
	if err != nil {
		return nil, err
	}
	var ms []GWMember
	err = protoFields(out, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) error {
		if num != 2 || typ != protowire.BytesType {
			return nil
		}
		m, err := decodeMember(bs)
		ms = append(ms, m)
		return err
	})
	return ms, err
}

// Remove is `member remove`.
func (g *GRPC) Remove(ctx context.Context, id uint64) error {
	_, err := g.anyEndpoint(ctx, "/etcdserverpb.Cluster/MemberRemove", idRequest(id))
	return err
}

// AddLearner is `member add --learner`; it returns the new member's ID.
func (g *GRPC) AddLearner(ctx context.Context, peerURLs []string) (uint64, error) {
	var req []byte
	for _, u := range peerURLs {
		req = protowire.AppendString(protowire.AppendTag(req, 1, protowire.BytesType), u)
	}
	req = protowire.AppendVarint(protowire.AppendTag(req, 2, protowire.VarintType), 1) // isLearner
	out, err := g.anyEndpoint(ctx, "/etcdserverpb.Cluster/MemberAdd", req)
	if err != nil {
		return 0, err
	}
	var id uint64
	err = protoFields(out, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) error {
		if num == 2 && typ == protowire.BytesType {
			m, err := decodeMember(bs)
			id = m.ID
			return err
		}
		return nil
	})
	if err == nil && id == 0 {
		err = errors.New("etcd added a member and named no ID")
	}
	return id, err
}

// Promote is `member promote`.
func (g *GRPC) Promote(ctx context.Context, id uint64) error {
	_, err := g.anyEndpoint(ctx, "/etcdserverpb.Cluster/MemberPromote", idRequest(id))
	return err
}

// Status is `endpoint status` of one endpoint.
func (g *GRPC) Status(ctx context.Context, endpoint string) (*GWStatus, error) {
	out, err := g.unary(ctx, endpoint, "/etcdserverpb.Maintenance/Status", nil)
	if err != nil {
		return nil, err
	}
	var st GWStatus
	err = protoFields(out, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType: // header
			return protoFields(bs, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				if num == 2 && typ == protowire.VarintType {
					st.MemberID = v
				}
				return nil
			})
		case num == 4 && typ == protowire.VarintType:
			st.Leader = v
		case num == 5 && typ == protowire.VarintType:
			st.RaftIndex = v
		case num == 10 && typ == protowire.VarintType:
			st.IsLearner = v != 0
		}
		return nil
	})
	return &st, err
}

// retryUnhealthy retries f while etcd refuses a membership change as
// "unhealthy cluster": its leader must have heard from every member for a
// few seconds (--strict-reconfig-check), which it has not just after
// another change or a member's restart.
func retryUnhealthy(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || !strings.Contains(err.Error(), "unhealthy cluster") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
