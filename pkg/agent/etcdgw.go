package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// The agent reaches the cluster's members through etcd's own JSON gateway
// (grpc-gateway, served on every client URL; etcd enables it by default),
// with etcd's client certificate from its manifest: the agent stays a
// small static binary, without etcd's client library, and needs no etcdctl
// in the image (the plugin's one client is pkg/etcd; this is the node
// side's few calls, made where the plugin cannot reach).

// GWMember is a member as the gateway lists it.
type GWMember struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// GWStatus is a member's status as the gateway reports it.
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

// Gateway implements Members over HTTPS; Endpoints are tried in order
// until one answers.
type Gateway struct {
	Endpoints []string
	Client    *http.Client
}

// NewGateway reads etcd's client TLS files (node paths under root).
func NewGateway(root string, endpoints []string, certFile, keyFile, caFile string) (*Gateway, error) {
	cfg, err := clientTLS(root, certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	return &Gateway{Endpoints: endpoints, Client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
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

// gwError is the gateway's error body.
type gwError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// ErrGateway marks an answer from etcd (a refusal), not a failure to
// reach it: another endpoint would answer the same.
var ErrGateway = errors.New("etcd refused")

func (g *Gateway) call(ctx context.Context, endpoint, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	url := strings.TrimSuffix(endpoint, "/") + "/v3/" + method
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.Client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e gwError
		_ = json.Unmarshal(raw, &e)
		msg := e.Message
		if msg == "" {
			msg = e.Error
		}
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		if resp.StatusCode == http.StatusNotFound && msg == "" {
			return fmt.Errorf("POST %s: 404: etcd's JSON gateway is off (--enable-grpc-gateway=false?)", url)
		}
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusInternalServerError || strings.Contains(msg, "no leader") || strings.Contains(msg, "leader changed") {
			return fmt.Errorf("%s: %s %s", url, resp.Status, msg) // this member cannot answer now; another may
		}
		return fmt.Errorf("%s: %w: %s", url, ErrGateway, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("POST %s: unreadable answer: %w", url, err)
	}
	return nil
}

// any tries each endpoint until one answers; a refusal is final.
func (g *Gateway) anyEndpoint(ctx context.Context, method string, in, out any) error {
	var errs []error
	for _, ep := range g.Endpoints {
		err := g.call(ctx, ep, method, in, out)
		if err == nil || errors.Is(err, ErrGateway) {
			return err
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return errors.New("no etcd endpoint to ask")
	}
	return errors.Join(errs...)
}

// u64 reads a uint64 that grpc-gateway writes as a string (or a number).
type u64 uint64

func (v *u64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*v = 0
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	*v = u64(n)
	return err
}

type gwMember struct {
	ID         u64      `json:"ID"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

func (m gwMember) public() GWMember {
	return GWMember{ID: uint64(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
}

// List is `member list`, linearizable: a member just removed or added is
// seen as such.
func (g *Gateway) List(ctx context.Context) ([]GWMember, error) {
	var out struct {
		Members []gwMember `json:"members"`
	}
	if err := g.anyEndpoint(ctx, "cluster/member/list", map[string]any{"linearizable": true}, &out); err != nil {
		return nil, err
	}
	ms := make([]GWMember, 0, len(out.Members))
	for _, m := range out.Members {
		ms = append(ms, m.public())
	}
	return ms, nil
}

// Remove is `member remove`.
func (g *Gateway) Remove(ctx context.Context, id uint64) error {
	return g.anyEndpoint(ctx, "cluster/member/remove", map[string]string{"ID": strconv.FormatUint(id, 10)}, nil)
}

// AddLearner is `member add --learner`; it returns the new member's ID.
func (g *Gateway) AddLearner(ctx context.Context, peerURLs []string) (uint64, error) {
	var out struct {
		Member gwMember `json:"member"`
	}
	if err := g.anyEndpoint(ctx, "cluster/member/add", map[string]any{"peerURLs": peerURLs, "isLearner": true}, &out); err != nil {
		return 0, err
	}
	return uint64(out.Member.ID), nil
}

// Promote is `member promote`.
func (g *Gateway) Promote(ctx context.Context, id uint64) error {
	return g.anyEndpoint(ctx, "cluster/member/promote", map[string]string{"ID": strconv.FormatUint(id, 10)}, nil)
}

// Status is `endpoint status` of one endpoint.
func (g *Gateway) Status(ctx context.Context, endpoint string) (*GWStatus, error) {
	var out struct {
		Header struct {
			MemberID u64 `json:"member_id"`
		} `json:"header"`
		Leader    u64  `json:"leader"`
		RaftIndex u64  `json:"raftIndex"`
		IsLearner bool `json:"isLearner"`
	}
	if err := g.call(ctx, endpoint, "maintenance/status", map[string]any{}, &out); err != nil {
		return nil, err
	}
	return &GWStatus{MemberID: uint64(out.Header.MemberID), Leader: uint64(out.Leader), RaftIndex: uint64(out.RaftIndex), IsLearner: out.IsLearner}, nil
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
