package restore

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var when = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// members builds n kubeadm members; in reverse order, to show sorting.
func members(n int, version string) []discovery.Member {
	var ms []discovery.Member
	for i := n; i >= 1; i-- {
		ip := fmt.Sprintf("10.250.1.%d", 10+i)
		ms = append(ms, discovery.Member{
			Pod: fmt.Sprintf("etcd-cp%d", i), Node: fmt.Sprintf("cp%d", i), Name: fmt.Sprintf("cp%d", i),
			DataDir: "/var/lib/etcd", InitialAdvertisePeerURLs: []string{"https://" + ip + ":2380"},
			Image: "registry.k8s.io/etcd:" + version + "-0", Version: version,
		})
	}
	return ms
}

func snap(meta *Metadata) Snapshot {
	return Snapshot{Path: "etcd.db", Revision: 5000, Size: 20512, SHA256: "ab12", StorageVersion: "3.5.0", Meta: meta}
}

func TestPlanGolden(t *testing.T) {
	for _, tt := range []struct {
		n       int
		version string
		live    Live
		// enc: a bundle's encryption config for cp1.
		enc bool
	}{
		{n: 1, version: "3.5.35"},
		{n: 3, version: "3.7.0", live: Live{ClusterID: "c0ffee", Revision: 9000, MaxRaftIndex: 12000}},
		{n: 5, version: "3.6.8", live: Live{ClusterID: "c0ffee", Revision: 1_000_009_000, MaxRaftIndex: 12000}},
		{n: 1, version: "3.6.8", enc: true},
	} {
		name := fmt.Sprintf("%d-members-%s", tt.n, tt.version)
		opts := Options{Time: when}
		if tt.enc {
			name += "-bundle"
			opts.EncryptionConfigs = map[string]*EncryptionConfigPlan{"cp1": {Path: "/etc/kubernetes/enc/enc.yaml", SHA256: "cd34", Data: []byte("keys")}}
		}
		t.Run(name, func(t *testing.T) {
			var names []string
			for i := 1; i <= tt.n; i++ {
				names = append(names, fmt.Sprintf("cp%d", i))
			}
			p, err := NewPlan(members(tt.n, tt.version), snap(&Metadata{ClusterID: "c0ffee", Revision: 5000, MemberNames: names}), tt.live, opts)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := RenderPlan(&out, p); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".txt")
			if *update {
				os.WriteFile(golden, out.Bytes(), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if d := cmp.Diff(string(want), out.String()); d != "" {
				t.Errorf("(-%s +got):\n%s", golden, d)
			}
			for _, m := range p.Members {
				if !strings.Contains(strings.Join(m.RestoreArgv, " "), "--initial-cluster="+p.InitialCluster+" ") {
					t.Errorf("member %s restores with another --initial-cluster", m.Name)
				}
			}
		})
	}
}

func TestBump(t *testing.T) {
	for _, tt := range []struct {
		name string
		live Live
		off  bool
		want int64
	}{
		{"nothing live: OpenShift's 1e9", Live{}, false, 1_000_000_000},
		{"a young cluster: the floor", Live{Revision: 9000, MaxRaftIndex: 12000}, false, 12000 + BumpFloor},
		{"raft index plus 20%", Live{Revision: 9000, MaxRaftIndex: 12_000_000}, false, 14_400_000},
		{"revision far above the raft index", Live{Revision: 1_000_005_000, MaxRaftIndex: 100}, false, 1_200_000_000},
		{"off", Live{MaxRaftIndex: 12000}, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, why := chooseBump(5000, tt.live, tt.off)
			if got != tt.want || why == "" {
				t.Errorf("bump = %d (%s), want %d", got, why, tt.want)
			}
			if tt.live.Revision > 0 && !tt.off && 5000+got <= tt.live.Revision {
				t.Errorf("restored revision %d is not above the live %d", 5000+got, tt.live.Revision)
			}
		})
	}
}

// The basis read again right before the data is restored: a cluster that
// took more writes than the bump leaves room for stops the restore (S8).
func TestRecheckBump(t *testing.T) {
	p := &Plan{Snapshot: Snapshot{Revision: 5000}, Bump: 1_012_000}
	for _, tt := range []struct {
		name string
		live Live
		want string
	}{
		{name: "as planned", live: Live{Revision: 9000, MaxRaftIndex: 12000}},
		{name: "nothing answers now", live: Live{}},
		{name: "the raft index overtook the bump", live: Live{Revision: 9000, MaxRaftIndex: 1_012_000}, want: "raft index is 1012000 now, above the planned revision bump 1012000"},
		{name: "the revision overtook it", live: Live{Revision: 2_000_000, MaxRaftIndex: 12000}, want: "revision's lead over the snapshot is 1995000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := recheckBump(p, tt.live)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was changed")) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if err := recheckBump(&Plan{Bump: 0}, Live{MaxRaftIndex: 1 << 40}); err != nil {
		t.Errorf("--no-bump-revision is rechecked: %v", err)
	}
}

// A snapshot of a newer etcd than the cluster's is refused at the plan (S3).
func TestPlanRefusesANewerSnapshot(t *testing.T) {
	for _, tt := range []struct {
		storage, member string
		refused         bool
	}{
		{"3.6.0", "3.6.8", false},
		{"3.5.0", "3.6.8", false},
		{"3.7.0", "3.6.8", true},
		{"3.6.0", "3.5.35", true},
		{"", "3.5.35", false},
	} {
		s := snap(nil)
		s.StorageVersion = tt.storage
		_, err := NewPlan(members(1, tt.member), s, Live{}, Options{Time: when})
		if got := err != nil && strings.Contains(err.Error(), "newer than etcd"); got != tt.refused {
			t.Errorf("storage %q on etcd %s: err %v, want refused %t", tt.storage, tt.member, err, tt.refused)
		}
	}
}

func TestArgvAndVersionGates(t *testing.T) {
	for _, tt := range []struct {
		version string
		noBump  bool
		tool    string
		err     string
	}{
		{"3.5.35", false, "etcdctl", ""},
		{"3.5.10", false, "etcdctl", ""},
		{"3.5.9", false, "", "cannot bump the revision"},
		{"3.5.9", true, "etcdctl", ""},
		{"3.4.30", true, "", "supports 3.5 and later"},
		{"3.6.0", false, "etcdutl", ""},
		{"3.7.0", false, "etcdutl", ""},
		{"", false, "", "cannot tell the etcd version"},
	} {
		t.Run(tt.version+fmt.Sprint(tt.noBump), func(t *testing.T) {
			p, err := NewPlan(members(1, tt.version), snap(nil), Live{}, Options{Time: when, NoBumpRevision: tt.noBump})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []string{tt.tool, "snapshot", "restore", "/var/lib/kubectl-etcd/restore/20260102T030405Z/snapshot.db",
				"--name=cp1", "--initial-cluster=cp1=https://10.250.1.11:2380", "--initial-cluster-token=kubectl-etcd-restore-20260102t030405z",
				"--initial-advertise-peer-urls=https://10.250.1.11:2380"}
			if !tt.noBump {
				want = append(want, "--bump-revision=1000000000", "--mark-compacted")
			}
			want = append(want, "--data-dir=/var/lib/etcd-restore-20260102T030405Z.part/data")
			if d := cmp.Diff(want, p.Members[0].RestoreArgv); d != "" {
				t.Errorf("argv (-want +got):\n%s", d)
			}
		})
	}
}

func TestMetadataMismatch(t *testing.T) {
	live := Live{ClusterID: "c0ffee"}
	for _, tt := range []struct {
		name  string
		meta  *Metadata
		force bool
		err   string
	}{
		{"other cluster", &Metadata{ClusterID: "deadbeef", MemberNames: []string{"cp1", "cp2", "cp3"}}, false, "cluster ID deadbeef, but this cluster's is c0ffee"},
		{"other members", &Metadata{ClusterID: "c0ffee", MemberNames: []string{"old1", "old2", "old3"}}, false, "members old1,old2,old3, but this cluster's are cp1,cp2,cp3"},
		{"forced", &Metadata{ClusterID: "deadbeef", MemberNames: []string{"old1"}}, true, ""},
		{"wrong FILE.json", &Metadata{ClusterID: "c0ffee", Revision: 4999}, true, "do not belong together"},
		{"matches", &Metadata{ClusterID: "c0ffee", MemberNames: []string{"cp3", "cp1", "cp2"}}, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlan(members(3, "3.7.0"), snap(tt.meta), live, Options{Time: when, Force: tt.force})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if !tt.force && !strings.Contains(err.Error(), "--force") {
					t.Errorf("err = %v does not name --force", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.force && len(p.Warnings) == 0 {
				t.Error("a forced mismatch left no warning in the plan")
			}
		})
	}
}

func TestPlanRefusesBadMembers(t *testing.T) {
	dup := members(2, "3.7.0")
	dup[1].Name = dup[0].Name
	noPeer := members(1, "3.7.0")
	noPeer[0].InitialAdvertisePeerURLs = nil
	for name, ms := range map[string][]discovery.Member{"none": nil, "duplicate": dup, "no peer URL": noPeer} {
		if _, err := NewPlan(ms, snap(nil), Live{}, Options{Time: when}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewDataDir(t *testing.T) {
	for old, want := range map[string]string{
		"/var/lib/etcd":                               "/var/lib/etcd-restore-20260102T030405Z",
		"/var/lib/etcd-restore-20251201T000000Z":      "/var/lib/etcd-restore-20260102T030405Z",
		"/var/lib/etcd/data-restore-20251201T000000Z": "/var/lib/etcd/data-restore-20260102T030405Z",
		"/var/lib/etcd-restore-old":                   "/var/lib/etcd-restore-old-restore-20260102T030405Z",
	} {
		if got := newDataDir(old, "20260102T030405Z"); got != want {
			t.Errorf("newDataDir(%s) = %s, want %s", old, got, want)
		}
	}
}

func TestPlanStaticPodDirPerNode(t *testing.T) {
	ms := members(3, "3.7.0")
	p, err := NewPlan(ms, snap(nil), Live{}, Options{Time: when, StaticPodDirs: map[string]string{ms[1].Node: "/var/lib/kubelet/static/"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{DefaultStaticPodDir, "/var/lib/kubelet/static", DefaultStaticPodDir} {
		m := p.Members[i]
		if m.StaticPodDir != want || p.AgentSpec(m).StaticPodDir != want || !strings.Contains(strings.Join(m.Steps, "\n"), want+"/etcd.yaml") {
			t.Errorf("node %s: static pod dir %q (agent %q), steps %q; want %s", m.Node, m.StaticPodDir, p.AgentSpec(m).StaticPodDir, m.Steps, want)
		}
	}
	_, err = NewPlan(ms, snap(nil), Live{}, Options{Time: when, StaticPodDirs: map[string]string{ms[0].Node: "/var/lib"}})
	if err == nil || !strings.Contains(err.Error(), "inside the kubelet's static pod dir /var/lib") {
		t.Errorf("a static pod dir holding the journal: err = %v", err)
	}
}
