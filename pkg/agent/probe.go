package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Condition returns nil once what it waits for holds, else why not.
type Condition func(ctx context.Context) error

// Dialer opens TCP connections; *net.Dialer is one, tests use fakes.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// HTTPDoer sends HTTP requests; *http.Client is one.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// PortClosed holds when a dial to addr is refused: the process that
// listened there is gone. Other errors (a timeout) prove nothing.
func PortClosed(d Dialer, addr string) Condition {
	return func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return fmt.Errorf("%s still accepts connections", addr)
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		return fmt.Errorf("%s: %w", addr, err)
	}
}

// PortOpen holds when addr accepts a TCP connection.
func PortOpen(d Dialer, addr string) Condition {
	return func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		return c.Close()
	}
}

// EtcdHealthy holds when GET metricsURL/health answers {"health":"true"}.
// etcd answers so only with quorum, so in a multi-member cluster this
// needs the other nodes to have come up too.
func EtcdHealthy(c HTTPDoer, metricsURL string) Condition {
	url := strings.TrimSuffix(metricsURL, "/") + "/health"
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var h struct {
			Health string `json:"health"`
			Reason string `json:"reason"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Health != "true" {
			return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	}
}

// WaitFor polls cond every interval until it holds, the timeout passes or
// ctx ends; the error names the last reason it did not hold.
func WaitFor(ctx context.Context, what string, cond Condition, timeout, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	deadline, _ := ctx.Deadline()
	var last error
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		// A probe cut short by the deadline (a dial's own timer may fire
		// before ctx reports it) says only that time ran out; keep the
		// reason before it.
		if last == nil || time.Now().Before(deadline) {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited %s for %s: last: %w", timeout, what, last)
		case <-t.C:
		}
	}
}

// ProbeHTTP is the client of the node's probes: no connection is kept
// alive, so that a probe after a restart reaches the process that listens
// now, never one that served a kept connection before.
func ProbeHTTP() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
}
