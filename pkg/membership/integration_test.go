package membership_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/change"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/membership"
)

func opts(log *bytes.Buffer) change.Options {
	return change.Options{Log: log, HealthTimeout: 30 * time.Second, Poll: 200 * time.Millisecond}
}

func dry(o change.Options) change.Options { o.DryRun = true; return o }

func voters(t *testing.T, c *etcdtest.Cluster) (n int, learners int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ml, err := c.Client(t).MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		if m.IsLearner {
			learners++
		} else {
			n++
		}
	}
	return n, learners
}

func wantRefused(t *testing.T, err error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("not refused; want an error with %q", words)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// TestIntegrationMembership adds a learner, lets it catch up, promotes
// it and removes it again, through each transport, on a real 3-member
// TLS cluster; removes a member that never started; and refuses the
// removals that would stop the cluster.
func TestIntegrationMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real 3-member etcd cluster")
	}
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	for _, tr := range c.Transports(t, 5*time.Second) {
		t.Run("learner-add-promote-remove/"+tr.Name, func(t *testing.T) {
			m := c.NewMember("m4")
			var log bytes.Buffer
			res, err := membership.Add(ctx, tr.T, c.Pods(), membership.AddConfig{Options: opts(&log), Name: m.Name, PeerURLs: []string{m.PeerURL}, Learner: true})
			t.Log(log.String())
			if err != nil {
				t.Fatal(err)
			}
			if !res.Done || res.Member.ID == "" || res.InitialClusterState != "existing" || !strings.Contains(res.InitialCluster, "m4="+m.PeerURL) || len(res.Members.Members) != 4 {
				t.Fatalf("add: %+v", res)
			}
			if n, l := voters(t, c); n != 3 || l != 1 {
				t.Fatalf("after add: %d voters, %d learners", n, l)
			}
			// Adding it again is refused by peer URL (and by name once
			// it has started and etcd knows its name).
			_, err = membership.Add(ctx, tr.T, c.Pods(), membership.AddConfig{Options: opts(&log), Name: "m9", PeerURLs: []string{m.PeerURL}, Learner: true})
			wantRefused(t, err, "already has the peer URL "+m.PeerURL)

			if err := c.Join(m, res.InitialCluster); err != nil {
				t.Fatal(err)
			}
			defer m.Stop()
			log.Reset()
			pres, err := membership.Promote(ctx, tr.T, c.Pods(), membership.PromoteConfig{Options: opts(&log), Member: res.Member.ID})
			t.Log(log.String())
			if err != nil {
				t.Fatal(err)
			}
			// The learner has no pod: through the leader's etcdctl, its
			// status is read by its client URL; client/v3 over a
			// port-forward reaches the leader alone.
			wantLag := "raft index"
			if tr.Name == "port-forward" {
				wantLag = "its status could not be read"
			}
			if !pres.Done || pres.Member.Name != "m4" || !strings.Contains(log.String(), wantLag) {
				t.Errorf("promote: %+v, want %q in the log", pres, wantLag)
			}
			if n, l := voters(t, c); n != 4 || l != 0 {
				t.Fatalf("after promote: %d voters, %d learners", n, l)
			}
			_, err = membership.Promote(ctx, tr.T, c.Pods(), membership.PromoteConfig{Options: opts(&log), Member: "m4"})
			wantRefused(t, err, "is not a learner")
			_, err = membership.Add(ctx, tr.T, c.Pods(), membership.AddConfig{Options: opts(&log), Name: m.Name, PeerURLs: []string{"https://127.0.0.1:1"}, Learner: true})
			wantRefused(t, err, "already in the cluster", "member remove m4")

			// 4 voters -> 3: odd, all healthy, so no --force.
			log.Reset()
			rres, err := membership.Remove(ctx, tr.T, c.Pods(), membership.RemoveConfig{Options: opts(&log), Member: "m4"})
			t.Log(log.String())
			if err != nil {
				t.Fatal(err)
			}
			if !rres.Done || len(rres.Members.Members) != 3 || !strings.Contains(log.String(), "no etcd pod runs it") || !strings.Contains(log.String(), "4 now (quorum 3, 3 healthy); 3 after (quorum 2, 3 healthy)") {
				t.Errorf("remove: %+v\n%s", rres, log.String())
			}
			if n, l := voters(t, c); n != 3 || l != 0 {
				t.Fatalf("after remove: %d voters, %d learners", n, l)
			}
		})
	}

	t.Run("remove-unstarted", func(t *testing.T) {
		tr := c.ForwardTransport(5 * time.Second)
		m := c.NewMember("m5")
		var log bytes.Buffer
		res, err := membership.Add(ctx, tr, c.Pods(), membership.AddConfig{Options: opts(&log), Name: m.Name, PeerURLs: []string{m.PeerURL}, Learner: true})
		if err != nil {
			t.Fatal(err)
		}
		// Never started: it has no name, so its hex ID names it.
		log.Reset()
		_, err = membership.Remove(ctx, tr, c.Pods(), membership.RemoveConfig{Options: dry(opts(&log)), Member: res.Member.ID})
		if err != nil || !strings.Contains(log.String(), "it never started") || !strings.Contains(log.String(), "Dry run") {
			t.Fatalf("dry run: %v\n%s", err, log.String())
		}
		if _, l := voters(t, c); l != 1 {
			t.Fatalf("the dry run changed the list: %d learners", l)
		}
		rres, err := membership.Remove(ctx, tr, c.Pods(), membership.RemoveConfig{Options: opts(&log), Member: res.Member.ID})
		if err != nil || !rres.Done {
			t.Fatalf("remove: %v %+v", err, rres)
		}
		if n, l := voters(t, c); n != 3 || l != 0 {
			t.Fatalf("after remove: %d voters, %d learners", n, l)
		}
	})

	t.Run("last-member", func(t *testing.T) {
		one := etcdtest.Start(t, 1)
		var log bytes.Buffer
		_, err := membership.Remove(ctx, one.ForwardTransport(3*time.Second), one.Pods(), membership.RemoveConfig{Options: opts(&log), Member: "m1", Force: true})
		wantRefused(t, err, "refusing to remove m1", "last healthy member")
	})

	t.Run("refusals", func(t *testing.T) {
		tr := c.ForwardTransport(3 * time.Second)
		var log bytes.Buffer
		// All healthy: 3 -> 2 leaves an even count.
		_, err := membership.Remove(ctx, tr, c.Pods(), membership.RemoveConfig{Options: opts(&log), Member: "m2"})
		wantRefused(t, err, "refusing to remove m2", "an even count", "--force")
		// A voter that has not started would raise the quorum.
		c.StopMember(2)
		_, err = membership.Add(ctx, tr, c.Pods(), membership.AddConfig{Options: opts(&log), Name: "m6", PeerURLs: []string{"https://127.0.0.1:9"}})
		wantRefused(t, err, "refusing to add m6 as a voting member", "--learner")
		// m3 is down: removing m2 leaves m1 and m3, one healthy of a
		// quorum of 2, refused without --force; with it, etcd refuses.
		_, err = membership.Remove(ctx, tr, c.Pods(), membership.RemoveConfig{Options: opts(&log), Member: "m2"})
		wantRefused(t, err, "need 2 healthy for a quorum and only 1 is")
		log.Reset()
		_, err = membership.Remove(ctx, tr, c.Pods(), membership.RemoveConfig{Options: opts(&log), Member: "m2", Force: true})
		if err == nil {
			t.Fatalf("etcd removed m2 with m3 down:\n%s", log.String())
		}
		t.Logf("with --force: %v", err)
		if n, _ := voters(t, c); n != 3 {
			t.Fatalf("%d voters after a refused removal", n)
		}
		// m2 and m3 down: no quorum, so the list cannot be read.
		c.StopMember(1)
		_, err = membership.Remove(ctx, tr, c.Pods(), membership.RemoveConfig{Options: opts(&log), Member: "m1", Force: true})
		wantRefused(t, err, "member list cannot be read", "needs a quorum")
	})
}
