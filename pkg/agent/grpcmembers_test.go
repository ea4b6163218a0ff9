package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
)

// TestIntegrationMembersGRPC drives a real TLS cluster through the
// agent's gRPC calls: list, status, remove, add a learner, promote it.
func TestIntegrationMembersGRPC(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := NewGRPC("/", c.Endpoints(), c.PKI.CertFile, c.PKI.KeyFile, c.PKI.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := g.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].ID == 0 || ms[0].Name == "" || len(ms[0].PeerURLs) != 1 {
		t.Fatalf("list: %+v", ms)
	}
	st, err := g.Status(ctx, c.Members[0].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemberID != c.Members[0].ID() || st.Leader == 0 || st.RaftIndex == 0 {
		t.Fatalf("status: %+v, want member %x", st, c.Members[0].ID())
	}
	// Member 2 "dies" and is replaced by a learner on a new data dir.
	old := c.Members[2]
	oldID := old.ID()
	c.StopMember(2)
	g.Endpoints = c.Endpoints()[:2]
	if err := g.Remove(ctx, oldID); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(ctx, oldID); !errors.Is(err, ErrRefused) {
		t.Fatalf("a second remove: %v, want a refusal from etcd", err)
	}
	nm := c.NewMember(old.Name)
	var id uint64
	err = retryUnhealthy(ctx, time.Minute, func() (err error) {
		id, err = g.AddLearner(ctx, []string{nm.PeerURL})
		return err
	})
	if err != nil || id == 0 {
		t.Fatalf("add: %x %v", id, err)
	}
	ms, _ = g.List(ctx)
	var ic string
	for _, m := range ms {
		name := m.Name
		if m.ID == id {
			if !m.IsLearner {
				t.Fatalf("%x is not a learner: %+v", id, m)
			}
			name = nm.Name
		}
		if ic != "" {
			ic += ","
		}
		ic += name + "=" + m.PeerURLs[0]
	}
	if err := c.Join(nm, ic); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		err = g.Promote(ctx, id)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("promote: %v", err)
		}
		t.Logf("promote: %v", err)
		time.Sleep(time.Second)
	}
	ms, _ = g.List(ctx)
	for _, m := range ms {
		if m.ID == id && m.IsLearner {
			t.Fatalf("still a learner after promote: %+v", m)
		}
	}
}
