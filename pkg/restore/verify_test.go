package restore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
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
	d := etcd.ClientDialerFunc(func(_ context.Context, m discovery.Member) (etcd.Client, error) {
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
			d := etcd.ClientDialerFunc(func(_ context.Context, m discovery.Member) (etcd.Client, error) {
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
