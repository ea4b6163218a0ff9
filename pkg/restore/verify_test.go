package restore

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// atRev answers the key count and hashkv of one member, and records the
// revision asked.
type atRev struct {
	etcd.Client
	keys int64
	hash uint32
	revs *[]int64
}

func (a atRev) GetPage(_ context.Context, r etcd.PageRequest) (*etcd.Page, error) {
	*a.revs = append(*a.revs, r.Revision)
	if r.Key != "\x00" || r.End != "\x00" || !r.KeysOnly {
		return nil, nil
	}
	return &etcd.Page{Count: a.keys, Revision: r.Revision}, nil
}

func (a atRev) HashKV(_ context.Context, rev int64) (*etcd.KVHash, error) {
	*a.revs = append(*a.revs, rev)
	return &etcd.KVHash{Hash: a.hash, HashRevision: rev}, nil
}

func (atRev) Close() error { return nil }

// A member that cannot be read yet is a read error (the check retries),
// not a data error (which fails the restore).
func TestVerifyDataReadFailure(t *testing.T) {
	p := &Plan{Snapshot: Snapshot{Revision: 100, Keys: 7}, Bump: 1000, Members: []MemberPlan{{Name: "cp1"}, {Name: "cp2"}}}
	pods := []discovery.Member{{Name: "cp1"}, {Name: "cp2"}}
	var revs []int64
	d := clientsFunc(func(_ context.Context, m discovery.Member) (etcd.Client, error) {
		if m.Name == "cp2" {
			return nil, errors.New("port-forward: pod not running")
		}
		return atRev{keys: 7, hash: 0xab, revs: &revs}, nil
	})
	_, readErr, dataErr := verifyData(context.Background(), d, pods, p)
	if readErr == nil || !strings.Contains(readErr.Error(), "member cp2: port-forward: pod not running") || dataErr != nil {
		t.Fatalf("readErr %v, dataErr %v; want cp2's read error only", readErr, dataErr)
	}
}

func TestVerifyData(t *testing.T) {
	p := &Plan{Snapshot: Snapshot{Revision: 100, Keys: 7}, Bump: 1000,
		Members: []MemberPlan{{Name: "cp1"}, {Name: "cp2"}, {Name: "cp3"}}}
	pods := []discovery.Member{{Name: "cp1"}, {Name: "cp2"}, {Name: "cp3"}, {Name: "other"}}
	type answer struct {
		keys int64
		hash uint32
	}
	for _, tt := range []struct {
		name    string
		answers map[string]answer
		wantErr []string
	}{
		{name: "all agree", answers: map[string]answer{"cp1": {7, 0xab}, "cp2": {7, 0xab}, "cp3": {7, 0xab}}},
		{name: "a key missing", answers: map[string]answer{"cp1": {7, 0xab}, "cp2": {6, 0xab}, "cp3": {7, 0xab}},
			wantErr: []string{"member cp2 holds 6 keys at revision 1100, the snapshot 7"}},
		{name: "hashes differ", answers: map[string]answer{"cp1": {7, 0xab}, "cp2": {7, 0xcd}, "cp3": {7, 0xab}},
			wantErr: []string{"hashkv at revision 1100 differ", "000000ab on cp1,cp3", "000000cd on cp2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var revs []int64
			d := clientsFunc(func(_ context.Context, m discovery.Member) (etcd.Client, error) {
				a := tt.answers[m.Name]
				return atRev{keys: a.keys, hash: a.hash, revs: &revs}, nil
			})
			dc, readErr, err := verifyData(context.Background(), d, pods, p)
			if readErr != nil {
				t.Fatalf("a read failed: %v", readErr)
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want %q", err, w)
				}
			}
			if len(dc.Keys) != 3 || len(revs) != 6 {
				t.Errorf("read %d members, %d times; want the 3 planned ones, twice each", len(dc.Keys), len(revs))
			}
			for _, r := range revs {
				if r != 1100 {
					t.Errorf("read at revision %d, want the snapshot's plus the bump, 1100", r)
				}
			}
		})
	}
}

func TestParseConfigz(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{in: `{"kubeletconfig":{"staticPodPath":"/etc/kubernetes/manifests/","syncFrequency":"1m"}}`, want: "/etc/kubernetes/manifests"},
		{in: `{"kubeletconfig":{"staticPodPath":"/var/lib/static"}}`, want: "/var/lib/static"},
		{in: `{"kubeletconfig":{}}`, err: "runs no static pods"},
		{in: `{"kubeletconfig":{"staticPodPath":"manifests"}}`, err: "not an absolute path"},
		{in: `{}`, err: "no kubeletconfig"},
		{in: `<html>`, err: "not JSON"},
	} {
		got, err := parseConfigz([]byte(tt.in))
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("parseConfigz(%s) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestKubeletStaticPodDirWithoutARESTClient(t *testing.T) {
	_, err := KubeletStaticPodDir(fake.NewClientset())(context.Background(), "cp1")
	if err == nil || !strings.Contains(err.Error(), "no REST client") {
		t.Errorf("err = %v, want an error, not a panic", err)
	}
}

// clientsFunc is a transport that only dials, through a function.
type clientsFunc func(ctx context.Context, m discovery.Member) (etcd.Client, error)

func (f clientsFunc) Name() string                                      { return "fake" }
func (f clientsFunc) Prepare(context.Context, []discovery.Member) error { return nil }
func (f clientsFunc) Client(ctx context.Context, m discovery.Member) (etcd.Client, error) {
	return f(ctx, m)
}

func TestOldDataCommands(t *testing.T) {
	same := []MemberPlan{{Node: "a", OldDataDir: "/var/lib/etcd"}, {Node: "b", OldDataDir: "/var/lib/etcd"}}
	if got := oldDataCommands(same); got != " rm -rf /var/lib/etcd" {
		t.Errorf("same dirs: %q", got)
	}
	diff := []MemberPlan{{Node: "a", OldDataDir: "/var/lib/etcd"}, {Node: "b", OldDataDir: "/data/etcd"}}
	if got, want := oldDataCommands(diff), "\n      a: rm -rf /var/lib/etcd\n      b: rm -rf /data/etcd"; got != want {
		t.Errorf("different dirs: %q, want %q", got, want)
	}
}

// The pods a snapshot brought back are told from pods made since on the
// API server's clock, never the workstation's (L5): here the workstation
// runs 10 minutes ahead, and a backup's pod made a minute after this
// restore's first pod stays.
func TestRemoveLeftoversUsesTheServerClock(t *testing.T) {
	server := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	pod := func(name string, created time.Time) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{nodepod.ManagedByLabel: nodepod.ManagedByValue}}}
	}
	cs := fake.NewClientset(pod("brought-back", server.Add(-time.Hour)), pod("made-since", server.Add(time.Minute)))
	r := &run{d: Deps{Client: cs}, cfg: Config{Namespace: "kube-system", Out: io.Discard, ErrOut: io.Discard, Poll: time.Millisecond},
		start: server.Add(10 * time.Minute)}
	r.noteServerStart(&nodepod.Pod{Created: server})
	r.removeLeftovers(context.Background())
	l, err := cs.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, p := range l.Items {
		left = append(left, p.Name)
	}
	if !slices.Equal(left, []string{"made-since"}) {
		t.Errorf("pods left %v, want [made-since]", left)
	}
}
