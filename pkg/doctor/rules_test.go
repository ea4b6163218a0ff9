package doctor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodefacts"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// kubeadmFlags are the flags kubeadm writes into an etcd manifest;
// extra ones override them.
func kubeadmFlags(name, ip string, extra ...string) []string {
	flags := []string{"etcd",
		"--name=" + name, "--data-dir=/var/lib/etcd",
		"--advertise-client-urls=https://" + ip + ":2379", "--listen-client-urls=https://127.0.0.1:2379,https://" + ip + ":2379",
		"--initial-advertise-peer-urls=https://" + ip + ":2380", "--listen-peer-urls=https://" + ip + ":2380",
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--key-file=/etc/kubernetes/pki/etcd/server.key",
		"--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt", "--client-cert-auth=true",
		"--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt", "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
		"--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt", "--peer-client-cert-auth=true",
	}
	return append(flags, extra...)
}

func pod(name, node string, cmd []string) discovery.Member {
	return discovery.ParsePod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "etcd-" + name, Namespace: "kube-system"},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "etcd", Image: "registry.k8s.io/etcd:3.6.8-0", Command: cmd}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	})
}

// cluster is three healthy kubeadm members, cp1 leading.
func facts(version string) *Facts {
	f := &Facts{Now: now, ClusterID: 0xf9f4}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("cp%d", i)
		st := &etcd.Status{ClusterID: 0xf9f4, MemberID: uint64(i), Leader: 1, Version: version, Revision: 5000, RaftAppliedIndex: 9000,
			DBSize: 100 << 20, DBSizeInUse: 80 << 20, DBSizeQuota: 2 << 30}
		f.Members = append(f.Members, &MemberFacts{Pod: pod(name, name, kubeadmFlags(name, fmt.Sprintf("10.0.0.%d", i))), Status: st,
			Hash: &etcd.KVHash{MemberID: uint64(i), Hash: 0xabcd, HashRevision: 5000, CompactRevision: 4000}})
		f.List = append(f.List, etcd.MemberInfo{ID: uint64(i), Name: name})
	}
	f.HashRevision = 5000
	return f
}

// severities runs one check and returns member (or "cluster") → severity.
func severities(t *testing.T, f *Facts, id string) map[string]Severity {
	t.Helper()
	rep := Evaluate(f, Selection{Only: []string{id}})
	out := map[string]Severity{}
	for _, r := range rep.Results {
		if r.ID() != id {
			t.Fatalf("selected %s, got %s", id, r.ID())
		}
		if r.Severity != OK && r.Severity != NotChecked && r.Fix == "" {
			t.Errorf("%s %s has no fix: %s", id, r.Member, r.Found)
		}
		k := r.Member
		if k == "" {
			k = "cluster"
		}
		if old, ok := out[k]; !ok || r.Severity.rank() > old.rank() {
			out[k] = r.Severity
		}
	}
	return out
}

type ruleCase struct {
	name  string
	id    string
	edit  func(f *Facts)
	want  map[string]Severity
	found string // a piece of the worst finding
}

func runCases(t *testing.T, version string, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := facts(version)
			if tc.edit != nil {
				tc.edit(f)
			}
			got := severities(t, f, tc.id)
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s %s: %s, want %s (all: %v)\n%s", tc.id, k, got[k], want, got, dump(f, tc.id))
				}
			}
			if tc.found != "" && !strings.Contains(dump(f, tc.id), tc.found) {
				t.Errorf("findings lack %q:\n%s", tc.found, dump(f, tc.id))
			}
		})
	}
}

func dump(f *Facts, id string) string {
	var b strings.Builder
	for _, r := range Evaluate(f, Selection{Only: []string{id}}).Results {
		fmt.Fprintf(&b, "%s %s %s: %s | %s\n", r.ID(), r.Member, r.Severity, r.Found, r.Fix)
	}
	return b.String()
}

func TestTopologyRules(t *testing.T) {
	runCases(t, "3.6.8", []ruleCase{
		{name: "three voters", id: "topology.member-count", want: map[string]Severity{"cluster": OK}},
		{name: "one member", id: "topology.member-count", edit: func(f *Facts) { f.List = f.List[:1] }, want: map[string]Severity{"cluster": Warn}},
		{name: "four members", id: "topology.member-count", edit: func(f *Facts) { f.List = append(f.List, etcd.MemberInfo{ID: 4, Name: "cp4"}) }, want: map[string]Severity{"cluster": Warn}, found: "odd number"},
		{name: "learner left", id: "topology.learners", edit: func(f *Facts) { f.List[2].IsLearner = true }, want: map[string]Severity{"cp3": Warn}, found: "member promote 3"},
		{name: "two on one node", id: "topology.one-per-node", edit: func(f *Facts) { f.Members[1].Pod.Node = "cp1" }, want: map[string]Severity{"cluster": Fail}, found: "cp1, cp2 run on one node"},
		{name: "member without a pod", id: "topology.pods-and-members", edit: func(f *Facts) { f.List = append(f.List, etcd.MemberInfo{ID: 9, Name: "old"}) }, want: map[string]Severity{"old": Fail}, found: "has no etcd pod"},
		{name: "pod without a member", id: "topology.pods-and-members", edit: func(f *Facts) { f.List = f.List[:2] }, want: map[string]Severity{"cp3": Fail}, found: "does not have"},
		{name: "member down", id: "topology.reachable", edit: func(f *Facts) { f.Members[2].Err, f.Members[2].Status = errors.New("connection refused"), nil }, want: map[string]Severity{"cp1": OK, "cp3": Fail}},
		{name: "no list", id: "topology.member-count", edit: func(f *Facts) { f.ListErr = errors.New("timeout") }, want: map[string]Severity{"cluster": NotChecked}},
	})
}

func TestVersionRules(t *testing.T) {
	setVersion := func(i int, v string) func(f *Facts) {
		return func(f *Facts) { f.Members[i].Status.Version = v }
	}
	runCases(t, "3.5.26", []ruleCase{
		{name: "3.5.26 is fine", id: "versions.minimum", want: map[string]Severity{"cp1": OK}},
		{name: "3.5.4 has data-inconsistency bugs", id: "versions.minimum", edit: setVersion(0, "3.5.4"), want: map[string]Severity{"cp1": Fail, "cp2": OK}, found: "3.5.6"},
		{name: "3.5.6 is the minimum", id: "versions.minimum", edit: setVersion(0, "3.5.6"), want: map[string]Severity{"cp1": OK}},
		{name: "3.4.21 is below 3.4.22", id: "versions.minimum", edit: setVersion(0, "3.4.21"), want: map[string]Severity{"cp1": Fail}},
		{name: "3.4.22 is the minimum", id: "versions.minimum", edit: setVersion(0, "3.4.22"), want: map[string]Severity{"cp1": OK}},
		{name: "3.3 is gone", id: "versions.minimum", edit: setVersion(0, "3.3.27"), want: map[string]Severity{"cp1": Fail}},
		{name: "unknown version", id: "versions.minimum", edit: func(f *Facts) { f.Members[0].Status.Version, f.Members[0].Pod.Version = "", "" }, want: map[string]Severity{"cp1": NotChecked}},
		{name: "image tag when the member is down", id: "versions.minimum", edit: func(f *Facts) { f.Members[0].Status, f.Members[0].Err = nil, errors.New("down") }, want: map[string]Severity{"cp1": OK}, found: "etcd 3.6.8"},
		{name: "mixed versions", id: "versions.same", edit: setVersion(2, "3.5.25"), want: map[string]Severity{"cluster": Warn}, found: "3.5.25 on cp3"},
		{name: "one version", id: "versions.same", want: map[string]Severity{"cluster": OK}},
		{name: "3.5.25 is not ready for 3.6", id: "versions.upgrade-readiness", edit: setVersion(1, "3.5.25"), want: map[string]Severity{"cp1": OK, "cp2": Warn}, found: "#20967"},
		{name: "3.5.19 has the learner bug", id: "versions.learner-bug", edit: setVersion(0, "3.5.19"), want: map[string]Severity{"cp1": Warn}, found: "#19557"},
		{name: "3.5.20 prevents new damage, not old", id: "versions.learner-bug", edit: setVersion(0, "3.5.20"), want: map[string]Severity{"cp1": OK}, found: "damage from 3.5.19 or older can remain"},
		{name: "3.5.23 says how to clear old damage", id: "versions.learner-bug", edit: setVersion(0, "3.5.23"), want: map[string]Severity{"cp1": OK}, found: "before moving to 3.6, restart them all, or upgrade to 3.5.26+ as versions.upgrade-readiness asks (etcd-io/etcd#20793)"},
		{name: "3.5.24 has the whole fix", id: "versions.learner-bug", edit: setVersion(0, "3.5.24"), want: map[string]Severity{"cp1": OK}, found: "etcd 3.5.24 has the fixes for etcd-io/etcd#19557 and etcd-io/etcd#20793"},
		{name: "3.5.0 predates it", id: "versions.learner-bug", edit: setVersion(0, "3.5.0"), want: map[string]Severity{"cp1": OK}},
		{name: "storage behind the server", id: "versions.storage", edit: func(f *Facts) {
			f.Members[0].Status.Version, f.Members[0].Status.StorageVersion = "3.6.8", "3.5.0"
		}, want: map[string]Severity{"cp1": Warn}},
		{name: "storage follows", id: "versions.storage", edit: func(f *Facts) {
			f.Members[0].Status.Version, f.Members[0].Status.StorageVersion = "3.6.8", "3.6.0"
		}, want: map[string]Severity{"cp1": OK}},
	})
}

func TestConsistencyRules(t *testing.T) {
	runCases(t, "3.6.8", []ruleCase{
		{name: "same hashes", id: "consistency.hashkv", want: map[string]Severity{"cluster": OK}},
		{name: "a member diverged", id: "consistency.hashkv", edit: func(f *Facts) { f.Members[2].Hash.Hash = 0x1234 }, want: map[string]Severity{"cluster": Fail}, found: "cp3: 00001234"},
		{name: "a member could not hash", id: "consistency.hashkv", edit: func(f *Facts) { f.Members[2].Hash, f.Members[2].HashErr = nil, errors.New("timeout") }, want: map[string]Severity{"cp3": NotChecked, "cluster": OK}},
		{name: "readyz ok", id: "consistency.readyz", edit: func(f *Facts) {
			for _, m := range f.Members {
				m.Ready = &etcd.HTTPResponse{Code: 200, Body: []byte("[+]data_corruption ok\nok\n")}
			}
		}, want: map[string]Severity{"cp1": OK, "cp2": OK}},
		{name: "readyz says corrupt", id: "consistency.readyz", edit: func(f *Facts) {
			f.Members[0].Ready = &etcd.HTTPResponse{Code: 503, Body: []byte("[+]serializable_read ok\n[-]data_corruption failed: alarm activated\nhealth check failed\n")}
		}, want: map[string]Severity{"cp1": Fail}, found: "data_corruption failed: alarm activated"},
		{name: "no readyz before 3.5.11", id: "consistency.readyz", edit: func(f *Facts) { f.Members[0].Status.Version = "3.5.10" }, want: map[string]Severity{"cp1": NotChecked}, found: "3.5.11"},
		{name: "a follower far behind", id: "consistency.raft-lag", edit: func(f *Facts) { f.Members[1].Status.RaftAppliedIndex = 1000 }, want: map[string]Severity{"cp1": OK, "cp2": Warn}},
		{name: "no leader", id: "consistency.raft-lag", edit: func(f *Facts) {
			for _, m := range f.Members {
				m.Status.Leader = 0
			}
		}, want: map[string]Severity{"cluster": Fail}},
	})
}

func withPod(i int, extra ...string) func(f *Facts) {
	return func(f *Facts) {
		name := f.Members[i].Pod.Name
		f.Members[i].Pod = pod(name, name, kubeadmFlags(name, fmt.Sprintf("10.0.0.%d", i+1), extra...))
	}
}

func TestSecurityFlagRules(t *testing.T) {
	runCases(t, "3.6.8", []ruleCase{
		{name: "kubeadm's flags", id: "security.client-tls", want: map[string]Severity{"cp1": OK, "cp2": OK, "cp3": OK}},
		{name: "plain http client listener", id: "security.client-tls", edit: withPod(0, "--listen-client-urls=http://0.0.0.0:2379"), want: map[string]Severity{"cp1": Fail, "cp2": OK}, found: "plain-http http://0.0.0.0:2379"},
		{name: "plain http on loopback only", id: "security.client-tls", edit: withPod(0, "--listen-client-urls=https://10.0.0.1:2379,http://127.0.0.1:2379"), want: map[string]Severity{"cp1": Warn}},
		{name: "client-cert-auth off", id: "security.client-tls", edit: withPod(1, "--client-cert-auth=false"), want: map[string]Severity{"cp2": Fail}, found: "--client-cert-auth is off"},
		{name: "auto-tls", id: "security.client-tls", edit: withPod(1, "--auto-tls"), want: map[string]Severity{"cp2": Warn}},
		{name: "plain http peers", id: "security.peer-tls", edit: withPod(2, "--listen-peer-urls=http://10.0.0.3:2380", "--initial-advertise-peer-urls=http://10.0.0.3:2380"), want: map[string]Severity{"cp3": Fail}},
		{name: "peer-client-cert-auth off", id: "security.peer-tls", edit: withPod(2, "--peer-client-cert-auth=false"), want: map[string]Severity{"cp3": Fail, "cp1": OK}},
		{name: "metrics on loopback", id: "security.metrics-url", want: map[string]Severity{"cp1": OK}},
		{name: "metrics exposed in plain http", id: "security.metrics-url", edit: withPod(0, "--listen-metrics-urls=http://0.0.0.0:2381"), want: map[string]Severity{"cp1": Warn}},
		{name: "metrics exposed over https", id: "security.metrics-url", edit: withPod(0, "--listen-metrics-urls=https://0.0.0.0:2381"), want: map[string]Severity{"cp1": OK}},
	})
}

// certPEM is a certificate valid until notAfter, signed by itself.
func certPEM(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	return certBetween(t, now.Add(-365*24*time.Hour), notAfter)
}

// certBetween is a self-signed certificate valid from notBefore to
// notAfter.
func certBetween(t *testing.T, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcd"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func nodeFacts(t *testing.T, f *Facts, peerExpiry time.Time, mode string) {
	t.Helper()
	far := certPEM(t, now.Add(300*24*time.Hour))
	for _, m := range f.Members {
		m.Node = &nodefacts.NodeReport{
			Files: map[string][]byte{
				"/etc/kubernetes/pki/etcd/server.crt": far, "/etc/kubernetes/pki/etcd/ca.crt": far,
				"/etc/kubernetes/pki/etcd/peer.crt": certPEM(t, peerExpiry),
			},
			Modes: map[string]string{"/var/lib/etcd": mode},
		}
	}
}

func TestCertExpiryAndDataDir(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name   string
		expiry time.Time
		mode   string
		cert   Severity
		dir    Severity
		found  string
	}{
		{"far off, 0700", now.Add(90 * day), "700", OK, OK, ""},
		{"in 20 days warns, 0750", now.Add(20 * day), "750", Warn, Warn, "expires in 20 days"},
		{"in 5 days fails, 0755", now.Add(5 * day), "755", Fail, Fail, "peer certificate /etc/kubernetes/pki/etcd/peer.crt expires in 5 days"},
		{"expired fails", now.Add(-2 * day), "700", Fail, OK, "expired 2 days ago"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := facts("3.6.8")
			nodeFacts(t, f, tc.expiry, tc.mode)
			if got := severities(t, f, "security.cert-expiry")["cp1"]; got != tc.cert {
				t.Errorf("cert-expiry %s, want %s\n%s", got, tc.cert, dump(f, "security.cert-expiry"))
			}
			if got := severities(t, f, "security.data-dir")["cp2"]; got != tc.dir {
				t.Errorf("data-dir %s, want %s\n%s", got, tc.dir, dump(f, "security.data-dir"))
			}
			if !strings.Contains(dump(f, "security.cert-expiry"), tc.found) {
				t.Errorf("lacks %q:\n%s", tc.found, dump(f, "security.cert-expiry"))
			}
		})
	}
	t.Run("a node that cannot be read is not checked", func(t *testing.T) {
		f := facts("3.6.8")
		f.Members[0].NodeErr = errors.New("node cp1 is NotReady")
		for _, id := range []string{"security.cert-expiry", "security.data-dir"} {
			if got := severities(t, f, id)["cp1"]; got != NotChecked {
				t.Errorf("%s: %s", id, got)
			}
		}
	})
	t.Run("a file that is no certificate fails", func(t *testing.T) {
		f := facts("3.6.8")
		nodeFacts(t, f, now.Add(90*day), "700")
		f.Members[0].Node.Files["/etc/kubernetes/pki/etcd/ca.crt"] = []byte("garbage")
		if got := severities(t, f, "security.cert-expiry")["cp1"]; got != Fail {
			t.Errorf("%s", got)
		}
	})
}

// TestCertExpiryRoles varies one certificate of cp1 at a time, the
// others valid for 300 days: each role, the thresholds' both sides, a
// certificate not yet valid.
func TestCertExpiryRoles(t *testing.T) {
	const (
		server = "/etc/kubernetes/pki/etcd/server.crt"
		peer   = "/etc/kubernetes/pki/etcd/peer.crt"
		ca     = "/etc/kubernetes/pki/etcd/ca.crt"
	)
	day := 24 * time.Hour
	lastYear := now.Add(-365 * day)
	tests := []struct {
		name                string
		path                string
		notBefore, notAfter time.Time
		want                Severity
		found, fix          string
	}{
		{"server in 29 days warns", server, lastYear, now.Add(29 * day), Warn,
			"server certificate " + server + " expires in 29 days", "kubeadm certs renew etcd-server"},
		{"server in 31 days is ok", server, lastYear, now.Add(31 * day), OK, "the first expires 2027-01-01 (in 31 days)", ""},
		{"server in 6 days fails", server, lastYear, now.Add(6 * day), Fail, "server certificate " + server + " expires in 6 days", "kubeadm certs renew etcd-server"},
		{"server in 8 days warns", server, lastYear, now.Add(8 * day), Warn, "expires in 8 days", "kubeadm certs renew etcd-server"},
		{"peer in 29 days warns", peer, lastYear, now.Add(29 * day), Warn, "peer certificate " + peer + " expires in 29 days", "kubeadm certs renew etcd-peer"},
		{"CA in 20 days warns", ca, lastYear, now.Add(20 * day), Warn, "CA certificate " + ca + " expires in 20 days",
			"rotate the etcd CA and every certificate it signed before then"},
		{"CA in 3 days fails", ca, lastYear, now.Add(3 * day), Fail, "CA certificate " + ca + " expires in 3 days",
			"rotate the etcd CA and every certificate it signed before then"},
		{"CA expired fails", ca, lastYear, now.Add(-10 * day), Fail, "CA certificate " + ca + " expired 10 days ago",
			"rotate the etcd CA now, then reissue every certificate it signed"},
		{"server not valid yet fails", server, now.Add(2 * day), now.Add(300 * day), Fail,
			"server certificate " + server + " is not valid before 2026-12-03T12:00:00Z", "check this machine's and the node's clocks (the time here is 2026-12-01T12:00:00Z)"},
		{"CA not valid yet fails", ca, now.Add(time.Hour), now.Add(3650 * day), Fail, "is not valid before", "the node's clocks"},
		{"issued a minute ahead of this clock is ok", server, now.Add(time.Minute), now.Add(300 * day), OK, "expires", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := facts("3.6.8")
			nodeFacts(t, f, now.Add(300*day), "700")
			f.Members[0].Node.Files[tc.path] = certBetween(t, tc.notBefore, tc.notAfter)
			got := severities(t, f, "security.cert-expiry")
			if got["cp1"] != tc.want || got["cp2"] != OK {
				t.Errorf("cp1 %s (want %s), cp2 %s (want ok)\n%s", got["cp1"], tc.want, got["cp2"], dump(f, "security.cert-expiry"))
			}
			for _, r := range Evaluate(f, Selection{Only: []string{"security.cert-expiry"}}).Results {
				if r.Member != "cp1" {
					continue
				}
				if !strings.Contains(r.Found, tc.found) || !strings.Contains(r.Fix, tc.fix) {
					t.Errorf("found %q, fix %q; want %q and %q", r.Found, r.Fix, tc.found, tc.fix)
				}
			}
		})
	}
}

func TestCapacityRules(t *testing.T) {
	size := func(i int, db, inUse int64) func(f *Facts) {
		return func(f *Facts) { f.Members[i].Status.DBSize, f.Members[i].Status.DBSizeInUse = db, inUse }
	}
	runCases(t, "3.6.8", []ruleCase{
		{name: "5% of the quota", id: "capacity.quota", want: map[string]Severity{"cp1": OK}},
		{name: "85% warns", id: "capacity.quota", edit: size(0, 1741<<20, 1741<<20), want: map[string]Severity{"cp1": Warn, "cp2": OK}, found: "(85%)"},
		{name: "96% fails", id: "capacity.quota", edit: size(0, 1966<<20, 1966<<20), want: map[string]Severity{"cp1": Fail}},
		{name: "the pod spec's quota when status has none", id: "capacity.quota", edit: func(f *Facts) {
			f.Members[0].Status.DBSizeQuota = 0
			f.Members[0].Pod.QuotaBackendBytes = 100 << 20
		}, want: map[string]Severity{"cp1": Fail}},
		{name: "mostly free", id: "capacity.fragmentation", edit: size(1, 1<<30, 200<<20), want: map[string]Severity{"cp2": Warn, "cp1": OK}, found: "kubectl etcd defrag"},
		{name: "small and free is not worth it", id: "capacity.fragmentation", edit: size(1, 50<<20, 1<<20), want: map[string]Severity{"cp2": OK}},
		{name: "NOSPACE", id: "capacity.alarms", edit: func(f *Facts) { f.Alarms = []etcd.Alarm{{MemberID: 2, Type: "NOSPACE"}} }, want: map[string]Severity{"cp2": Fail}, found: "defrag --compact --disarm"},
		{name: "no alarm", id: "capacity.alarms", want: map[string]Severity{"cluster": OK}},
		{name: "compacted recently", id: "capacity.compaction", want: map[string]Severity{"cp1": OK}},
		{name: "never compacted", id: "capacity.compaction", edit: func(f *Facts) {
			f.Members[0].Status.Revision, f.Members[0].Hash.CompactRevision = 50000, -1
		}, want: map[string]Severity{"cp1": Warn}, found: "never compacted"},
		{name: "hours of history at the write rate", id: "capacity.compaction", edit: func(f *Facts) {
			m := f.Members[0]
			m.Status.Revision, m.Hash.CompactRevision = 100000, 50000
			m.Later, m.Elapsed = &etcd.Status{Revision: 100010}, 10*time.Second
		}, want: map[string]Severity{"cp1": Warn}, found: "1.0 writes/s"},
		{name: "minutes of history at the write rate", id: "capacity.compaction", edit: func(f *Facts) {
			m := f.Members[0]
			m.Status.Revision, m.Hash.CompactRevision = 100000, 50000
			m.Later, m.Elapsed = &etcd.Status{Revision: 110000}, 10*time.Second
		}, want: map[string]Severity{"cp1": OK}},
	})
}

// exposition builds metrics text: a WAL fsync histogram with the given
// counts per bucket (cumulative), and plain samples.
func exposition(fsync []int, samples map[string]float64) string {
	var b strings.Builder
	bounds := []string{"0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "+Inf"}
	b.WriteString("# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n")
	for i, le := range bounds {
		n := 0
		if i < len(fsync) {
			n = fsync[i]
		} else if len(fsync) > 0 {
			n = fsync[len(fsync)-1]
		}
		fmt.Fprintf(&b, "etcd_disk_wal_fsync_duration_seconds_bucket{le=%q} %d\n", le, n)
	}
	last := 0
	if len(fsync) > 0 {
		last = fsync[len(fsync)-1]
	}
	fmt.Fprintf(&b, "etcd_disk_wal_fsync_duration_seconds_sum 1\netcd_disk_wal_fsync_duration_seconds_count %d\n", last)
	for k, v := range samples {
		fmt.Fprintf(&b, "# TYPE %s gauge\n%s %g\n", k, k, v)
	}
	return b.String()
}

func metricsOf(t *testing.T, first, last string) *metrics.Metrics {
	t.Helper()
	a, err := metrics.ParseScrape(strings.NewReader(first), now.Add(-10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b, err := metrics.ParseScrape(strings.NewReader(last), now)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.Summarize(a, b)
	return &m
}

func TestPerformanceRules(t *testing.T) {
	healthy := map[string]float64{"etcd_server_has_leader": 1, "etcd_server_leader_changes_seen_total": 1, "process_start_time_seconds": float64(now.Add(-48 * time.Hour).Unix())}
	with := func(k string, v float64) map[string]float64 {
		out := map[string]float64{}
		for a, b := range healthy {
			out[a] = b
		}
		out[k] = v
		return out
	}
	set := func(first, last string) func(f *Facts) {
		return func(f *Facts) {
			for _, m := range f.Members {
				m.Metrics = metricsOf(t, first, last)
			}
		}
	}
	// Before the window 1000 fast fsyncs; in it 100 more, slow or fast.
	before := exposition([]int{1000}, healthy)
	fast := exposition([]int{1090, 1100}, healthy)
	slow := exposition([]int{1000, 1000, 1000, 1000, 1010, 1050, 1100}, healthy)
	verySlow := exposition([]int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1100}, healthy)
	runCases(t, "3.6.8", []ruleCase{
		{name: "fast disk", id: "performance.wal-fsync", edit: set(before, fast), want: map[string]Severity{"cp1": OK}, found: "100 samples in the window"},
		{name: "the window, not since start", id: "performance.wal-fsync", edit: set(before, slow), want: map[string]Severity{"cp1": Warn}, found: "above 10.0ms"},
		{name: "very slow", id: "performance.wal-fsync", edit: set(before, verySlow), want: map[string]Severity{"cp1": Fail}},
		{name: "no metrics", id: "performance.wal-fsync", edit: func(f *Facts) { f.Members[0].MetricsErr = errors.New("connection refused") }, want: map[string]Severity{"cp1": NotChecked}},
		{name: "no leader", id: "performance.has-leader", edit: set(before, exposition([]int{1000}, with("etcd_server_has_leader", 0))), want: map[string]Severity{"cp1": Fail}},
		{name: "a leader", id: "performance.has-leader", edit: set(before, fast), want: map[string]Severity{"cp1": OK}},
		{name: "leader change in the window", id: "performance.leader-changes", edit: set(before, exposition([]int{1000}, with("etcd_server_leader_changes_seen_total", 2))), want: map[string]Severity{"cp1": Warn}},
		{name: "changes since a start within the hour", id: "performance.leader-changes", edit: func(f *Facts) {
			s := exposition([]int{1000}, map[string]float64{"etcd_server_has_leader": 1, "etcd_server_leader_changes_seen_total": 4, "process_start_time_seconds": float64(now.Add(-20 * time.Minute).Unix())})
			set(s, s)(f)
		}, want: map[string]Severity{"cp1": Warn}, found: "3 leader change(s) since the member started 20m0s ago"},
		{name: "slow applies in the window", id: "performance.slow-applies", edit: set(exposition(nil, with("etcd_server_slow_apply_total", 3)), exposition(nil, with("etcd_server_slow_apply_total", 5))), want: map[string]Severity{"cp1": Warn}, found: "2 slow applies"},
		{name: "failed proposals", id: "performance.proposals", edit: set(exposition(nil, healthy), exposition(nil, with("etcd_server_proposals_failed_total", 7))), want: map[string]Severity{"cp1": Warn}},
		{name: "pending proposals", id: "performance.proposals", edit: set(before, exposition(nil, with("etcd_server_proposals_pending", 500))), want: map[string]Severity{"cp1": Warn}},
	})
}

// TestBackendCommitRule judges the p99 against etcd's hardware guide:
// warn from 25ms, fail from 250ms.
func TestBackendCommitRule(t *testing.T) {
	commit := func(p99 float64, samples int64) func(f *Facts) {
		return func(f *Facts) {
			f.Members[0].Metrics = &metrics.Metrics{BackendCommit: metrics.Latency{P50: p99 / 4, P99: p99, Samples: samples}}
		}
	}
	runCases(t, "3.6.8", []ruleCase{
		{name: "fast commits", id: "performance.backend-commit", edit: commit(0.008, 100), want: map[string]Severity{"cp1": OK}, found: "backend commit p99 8.0ms, p50 2.0ms (100 samples in the window)"},
		{name: "just under the warning", id: "performance.backend-commit", edit: commit(0.0249, 100), want: map[string]Severity{"cp1": OK}},
		{name: "25ms warns", id: "performance.backend-commit", edit: commit(0.025, 100), want: map[string]Severity{"cp1": Warn}, found: "above 25.0ms"},
		{name: "slow commits warn", id: "performance.backend-commit", edit: commit(0.120, 100), want: map[string]Severity{"cp1": Warn}, found: "defragment (kubectl etcd defrag)"},
		{name: "250ms fails", id: "performance.backend-commit", edit: commit(0.250, 100), want: map[string]Severity{"cp1": Fail}, found: "backend commit p99 250.0ms, p50 62.5ms (100 samples in the window), above 250.0ms"},
		{name: "no commit yet", id: "performance.backend-commit", edit: commit(0, 0), want: map[string]Severity{"cp1": NotChecked}, found: "no backend commit observed yet"},
		{name: "no metrics", id: "performance.backend-commit", want: map[string]Severity{"cp1": NotChecked}},
	})
}

func TestPeerRTTRule(t *testing.T) {
	rtt := func(le0064, total int) string {
		return fmt.Sprintf(`# TYPE etcd_network_peer_round_trip_time_seconds histogram
etcd_network_peer_round_trip_time_seconds_bucket{To="2",le="0.0064"} %d
etcd_network_peer_round_trip_time_seconds_bucket{To="2",le="0.0512"} %d
etcd_network_peer_round_trip_time_seconds_bucket{To="2",le="0.2048"} %d
etcd_network_peer_round_trip_time_seconds_bucket{To="2",le="+Inf"} %d
etcd_network_peer_round_trip_time_seconds_sum{To="2"} 1
etcd_network_peer_round_trip_time_seconds_count{To="2"} %d
`, le0064, le0064, total, total, total)
	}
	f := facts("3.6.8")
	f.Members[0].Metrics = metricsOf(t, rtt(10, 10), rtt(20, 20))
	f.Members[1].Metrics = metricsOf(t, rtt(10, 10), rtt(10, 20))
	got := severities(t, f, "performance.peer-rtt")
	if got["cp1"] != OK || got["cp2"] != Fail {
		t.Errorf("%v\n%s", got, dump(f, "performance.peer-rtt"))
	}
}

// snapshotFile writes a real bbolt database with etcd's sha256 trailer.
func snapshotFile(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path+".tmp", 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(path + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if err := os.WriteFile(path, append(b, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + ".tmp")
}

func TestBackupRules(t *testing.T) {
	day := 24 * time.Hour
	// The files' ages are against the clock the rules read (f.Now below),
	// not the fixed now of the other tests.
	now := time.Now()
	tests := []struct {
		name        string
		setup       func(t *testing.T, dir string)
		age, verify Severity
	}{
		{"fresh and sound", func(t *testing.T, dir string) { snapshotFile(t, filepath.Join(dir, "etcd.db")) }, OK, OK},
		{"two days old", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "etcd.db")
			snapshotFile(t, p)
			os.Chtimes(p, now.Add(-2*day), now.Add(-2*day))
		}, Warn, OK},
		{"newest wins", func(t *testing.T, dir string) {
			old := filepath.Join(dir, "old.db")
			snapshotFile(t, old)
			os.Chtimes(old, now.Add(-30*day), now.Add(-30*day))
			snapshotFile(t, filepath.Join(dir, "new.db"))
		}, OK, OK},
		{"damaged", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "etcd.db")
			snapshotFile(t, p)
			b, _ := os.ReadFile(p)
			b[5000] ^= 0xff
			os.WriteFile(p, b, 0o600)
		}, OK, Fail},
		{"empty directory", func(*testing.T, string) {}, Fail, NotChecked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			f := facts("3.6.8")
			f.Now = now
			f.Backup = ReadBackupDir(dir)
			if got := severities(t, f, "backups.newest")["cluster"]; got != tc.age {
				t.Errorf("newest %s, want %s\n%s", got, tc.age, dump(f, "backups.newest"))
			}
			if got := severities(t, f, "backups.verify")["cluster"]; got != tc.verify {
				t.Errorf("verify %s, want %s\n%s", got, tc.verify, dump(f, "backups.verify"))
			}
		})
	}
	t.Run("no --backup-dir", func(t *testing.T) {
		if got := severities(t, facts("3.6.8"), "backups.newest")["cluster"]; got != NotChecked {
			t.Errorf("%s", got)
		}
	})
}

func TestSelection(t *testing.T) {
	tests := []struct {
		sel       Selection
		id        string
		want, err bool
	}{
		{Selection{}, "security.cert-expiry", true, false},
		{Selection{Only: []string{"security"}}, "security.cert-expiry", true, false},
		{Selection{Only: []string{"security"}}, "capacity.quota", false, false},
		{Selection{Skip: []string{"security.cert-expiry"}}, "security.cert-expiry", false, false},
		{Selection{Skip: []string{"security.cert-expiry"}}, "security.data-dir", true, false},
		{Selection{Only: []string{"securty"}}, "", false, true},
	}
	for _, tc := range tests {
		if err := tc.sel.Validate(); (err != nil) != tc.err {
			t.Errorf("%+v: Validate = %v", tc.sel, err)
		}
		if tc.id != "" && tc.sel.wants(tc.id) != tc.want {
			t.Errorf("%+v wants %s = %v", tc.sel, tc.id, !tc.want)
		}
	}
}

func TestReportWorstAndOrder(t *testing.T) {
	f := facts("3.5.4")
	rep := Evaluate(f, Selection{})
	if rep.Worst() != Fail || rep.Summary.Fail == 0 || rep.ClusterID != "f9f4" {
		t.Errorf("worst %s summary %+v", rep.Worst(), rep.Summary)
	}
	seen := map[string]bool{}
	last := ""
	for _, r := range rep.Results {
		if r.Area != last && seen[r.Area] {
			t.Errorf("area %s is not grouped", r.Area)
		}
		seen[r.Area], last = true, r.Area
	}
}
