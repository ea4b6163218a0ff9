//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/metrics"
)

const (
	manifest = "/etc/kubernetes/manifests/etcd.yaml"
	pkiDir   = "/etc/kubernetes/pki/etcd"
)

// runCheck runs `kubectl etcd check -o json` with args and decodes it.
func runCheck(t *testing.T, args ...string) (doctor.Report, result) {
	t.Helper()
	r := kubectl(t, append([]string{"etcd", "check", "-o", "json", "--window", "5s"}, args...)...)
	var rep doctor.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check -o json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return rep, r
}

// finding is the result of check id on member ("" for the cluster).
func finding(t *testing.T, rep doctor.Report, id, member string) doctor.Result {
	t.Helper()
	for _, x := range rep.Results {
		if x.ID() == id && x.Member == member {
			return x
		}
	}
	t.Fatalf("no %s result for %q in %+v", id, member, rep.Results)
	return doctor.Result{}
}

func nodeExec(t *testing.T, node string, args ...string) result {
	t.Helper()
	return runCmd(t, "bash", append([]string{filepath.Join(root, "hack/cluster/node-exec.sh"), node}, args...)...)
}

// editManifest rewrites the etcd manifest of node with a sed script, waits
// for the kubelet to run the new pod, and puts the original back (and waits
// again) when the test ends.
func editManifest(t *testing.T, node, sedScript, wantInSpec string) {
	t.Helper()
	saved := "/etc/kubernetes/etcd.yaml.e2e-check"
	mustSucceed(t, nodeExec(t, node, "cp", "-p", manifest, saved))
	t.Cleanup(func() {
		mustSucceed(t, nodeExec(t, node, "sh", "-c", fmt.Sprintf("cat %s > %s && rm %s", saved, manifest, saved)))
		waitFor(t, 4*time.Minute, func() bool { return !strings.Contains(etcdCommand(t, node), wantInSpec) })
		settled(t, 4*time.Minute)
	})
	// Written in place, not with sed -i, so that the kubelet never sees a
	// second manifest in its directory.
	mustSucceed(t, nodeExec(t, node, "sh", "-c", fmt.Sprintf("sed %q %s > %s", sedScript, saved, manifest)))
	waitFor(t, 4*time.Minute, func() bool { return strings.Contains(etcdCommand(t, node), wantInSpec) })
	settled(t, 4*time.Minute)
}

// farNode is the control-plane node whose etcd the API server kubectl
// reaches (hc-cp1's, which kubeadm points at its own node's etcd only)
// does not need: the last one. Restarting that member leaves the API up,
// where restarting hc-cp1's takes the API down with it for a minute.
func farNode(t *testing.T) string {
	names := nodeNames(t)
	return names[len(names)-1]
}

// etcdCommand is the command line of the etcd pod on node, as the API
// server shows it.
func etcdCommand(t *testing.T, node string) string {
	r := runQuiet(t, "kubectl", "-n", "kube-system", "get", "pod", "etcd-"+node, "-o", "jsonpath={.spec.containers[0].command}")
	if r.code != 0 {
		return ""
	}
	return r.stdout
}

// TestCheckClean: a healthy cluster has no failing check, and exits 0.
// Disk and network latency are this machine's (every node shares its two
// cores and one disk), so a slow disk or peer round trip is logged, not
// failed; the rules themselves are unit-tested on captured metrics.
func TestCheckClean(t *testing.T) {
	scenario(t)
	rep, r := runCheck(t)
	for _, x := range rep.Results {
		switch {
		case x.Severity != doctor.Fail:
		case x.ID() == "performance.wal-fsync" || x.ID() == "performance.backend-commit" || x.ID() == "performance.peer-rtt":
			t.Logf("this machine's latency: %s %s: %s", x.ID(), x.Member, x.Found)
		default:
			t.Errorf("%s %s: %s (fix: %s)", x.ID(), x.Member, x.Found, x.Fix)
		}
	}
	if rep.Summary.Fail == 0 && r.code != 0 {
		t.Errorf("exit %d with no failing check", r.code)
	}
	if x := finding(t, rep, "consistency.hashkv", ""); x.Severity != doctor.OK {
		t.Errorf("hashkv: %s %s", x.Severity, x.Found)
	}
	for _, n := range nodeNames(t) {
		for _, id := range []string{"security.cert-expiry", "security.data-dir", "consistency.readyz", "performance.has-leader"} {
			if x := finding(t, rep, id, n); x.Severity != doctor.OK {
				t.Errorf("%s %s: %s %s", id, n, x.Severity, x.Found)
			}
		}
	}
	// Each member's log of the last hour is read: within the hour of its
	// start it agrees with the counter since then (the first election
	// being no change); beyond, it is what counts.
	for _, n := range nodeNames(t) {
		x := finding(t, rep, "performance.leader-changes", n)
		var ms []metrics.Metrics
		if r := mustSucceed(t, kubectl(t, "etcd", "metrics", "--member", n, "--window", "0", "-o", "json")); json.Unmarshal([]byte(r.stdout), &ms) != nil || len(ms) != 1 {
			t.Fatalf("metrics of %s: %s", n, r.stdout)
		}
		want, log := "no leader change since", "(its log agrees)"
		if c := ms[0].LeaderChanges - 1; c > 0 {
			want = fmt.Sprintf("%d leader change(s) since", c)
		}
		if time.Since(ms[0].StartTime) > time.Hour {
			want, log = "", " in the last hour (its log; "
		}
		if !strings.Contains(x.Found, log) || !strings.HasPrefix(x.Found, want) {
			t.Errorf("leader changes of %s: %s %q, want %q...%q; counter %d", n, x.Severity, x.Found, want, log, ms[0].LeaderChanges)
		}
	}
	// The table groups by area and ends with the summary.
	tr := mustSucceedOrFail(t, kubectl(t, "etcd", "check", "--window", "0", "--only", "topology,security"))
	if !strings.Contains(tr.stdout, "\ntopology ") || !strings.Contains(tr.stdout, "\nsecurity ") || !strings.Contains(tr.stderr, " fail, ") {
		t.Errorf("table:\n%s%s", tr.stdout, tr.stderr)
	}
	noHelperPods(t)
}

// mustSucceedOrFail accepts exit 0, or exit 1 from failing checks.
func mustSucceedOrFail(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 && !strings.Contains(r.stderr, "checks failed") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	return r
}

// TestCheckPeerCertNearExpiry: a peer certificate that expires in 5 days,
// signed by the cluster's CA for the same key and names, fails the
// certificate check; the original goes back at the end.
func TestCheckPeerCertNearExpiry(t *testing.T) {
	scenario(t)
	node := "hc-cp1"
	read := func(name string) []byte {
		// runQuiet: the CA key must not reach the test log.
		r := runQuiet(t, "bash", filepath.Join(root, "hack/cluster/node-exec.sh"), node, "cat", filepath.Join(pkiDir, name))
		if r.code != 0 {
			t.Fatalf("reading %s on %s: %s", name, node, r.stderr)
		}
		return []byte(r.stdout)
	}
	ca, caKey, peer := parseCert(t, read("ca.crt")), parseKey(t, read("ca.key")), parseCert(t, read("peer.crt"))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: peer.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 24 * time.Hour),
		KeyUsage: peer.KeyUsage, ExtKeyUsage: peer.ExtKeyUsage, DNSNames: peer.DNSNames, IPAddresses: peer.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, peer.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	// The node sees the host's /tmp.
	short := filepath.Join(t.TempDir(), "peer.crt")
	if err := os.WriteFile(short, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(pkiDir, "peer.crt.e2e-check")
	mustSucceed(t, nodeExec(t, node, "cp", "-p", filepath.Join(pkiDir, "peer.crt"), saved))
	t.Cleanup(func() {
		mustSucceed(t, nodeExec(t, node, "mv", saved, filepath.Join(pkiDir, "peer.crt")))
		settled(t, 4*time.Minute)
	})
	mustSucceed(t, nodeExec(t, node, "sh", "-c", fmt.Sprintf("cat %s > %s", short, filepath.Join(pkiDir, "peer.crt"))))

	rep, r := runCheck(t, "--only", "security.cert-expiry")
	x := finding(t, rep, "security.cert-expiry", node)
	if x.Severity != doctor.Fail || !strings.Contains(x.Found, "peer certificate "+filepath.Join(pkiDir, "peer.crt")+" expires in") || !strings.Contains(x.Fix, "kubeadm certs renew etcd-peer") {
		t.Errorf("cert-expiry on %s: %+v", node, x)
	}
	if r.code == 0 {
		t.Error("check exited 0 with a failing check")
	}
	noHelperPods(t)
}

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// parseKey reads kubeadm's CA key: PKCS#1 RSA by default, or EC / PKCS#8.
func parseKey(t *testing.T, b []byte) any {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k
	}
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return k
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("the CA key is no RSA, EC or PKCS#8 key: %v", err)
	}
	return k
}

// TestManifestEdited edits the etcd manifest of one member once, for both
// of its scenarios, so that etcd restarts twice in all (the edit, and the
// original put back) rather than twice each. On three nodes it is the last
// node's member: its alarm stops the cluster's writes all the same, while
// the API server kubectl reaches stays up through that member's restarts.
//
// insecure-flag: --client-cert-auth=false is a failing security check,
// with its fix, and a non-zero exit.
//
// quota-nospace-recovery is #12's 3 a.m. scenario: etcd has a small
// --quota-backend-bytes, and one big ConfigMap is rewritten through the
// API server until its history fills the quota. Past 80% `check` warns
// (#13); then the API server refuses writes with "database space
// exceeded", `check` fails on the NOSPACE alarm (read through etcdctl in
// the container, as no helper pod can start), and `kubectl etcd defrag
// --compact --disarm` alone brings writes back.
func TestManifestEdited(t *testing.T) {
	anyScenario(t, "insecure-flag", "quota-nospace-recovery")
	node := farNode(t)
	quota := dbSize(t, node) + 32<<20
	editManifest(t, node, fmt.Sprintf(`s/--client-cert-auth=true/--client-cert-auth=false/;s/^\( *\)- --data-dir=/\1- --quota-backend-bytes=%d\n\1- --data-dir=/`, quota),
		fmt.Sprintf("--quota-backend-bytes=%d", quota))
	if !strings.Contains(etcdCommand(t, node), "--client-cert-auth=false") {
		t.Fatalf("the edited manifest of %s does not turn client certificates off: %s", node, etcdCommand(t, node))
	}

	t.Run("insecure-flag", func(t *testing.T) {
		scenario(t)
		rep, r := runCheck(t, "--only", "security")
		x := finding(t, rep, "security.client-tls", node)
		if x.Severity != doctor.Fail || !strings.Contains(x.Found, "--client-cert-auth is off") || !strings.Contains(x.Fix, "--client-cert-auth=true") {
			t.Errorf("client-tls on %s: %+v", node, x)
		}
		if r.code == 0 {
			t.Error("check exited 0 with a failing check")
		}
		for _, n := range nodeNames(t) {
			if n != node && finding(t, rep, "security.client-tls", n).Severity != doctor.OK {
				t.Errorf("client-tls on %s is not ok", n)
			}
		}
		noHelperPods(t)
	})

	t.Run("quota-nospace-recovery", func(t *testing.T) {
		scenario(t)
		// Cleanups run last first: the quota is restored (editManifest's),
		// then the ConfigMap is deleted (a delete passes a NOSPACE alarm) and
		// the space and any alarm left are cleared.
		t.Cleanup(func() {
			kubectl(t, "delete", "configmap", "e2e-nospace-0", "e2e-nospace-1", "e2e-nospace-2", "e2e-nospace-3", "--ignore-not-found")
			// The mirror pod of the etcd just restarted may show Pending a
			// little longer than etcd takes to answer.
			waitFor(t, 2*time.Minute, func() bool {
				return kubectl(t, "etcd", "defrag", "--compact", "--disarm", "--force", "--yes").code == 0
			})
		})

		// Four ConfigMaps of 700 KB, each replaced with a new round number
		// each time by its own writer, the four side by side: every write
		// is a new revision of the whole object, which only a compaction
		// (and a defragmentation to give the pages back) frees. The
		// placeholders come before the value, and sed replaces the first
		// of each only.
		value := filepath.Join(t.TempDir(), "value")
		mustSucceed(t, runCmd(t, "bash", "-c", "head -c 525000 /dev/urandom | base64 -w0 >"+value))
		tmpl := value + ".yaml"
		mustSucceed(t, runCmd(t, "bash", "-c", fmt.Sprintf(`{ printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: e2e-nospace-NAME\n  namespace: default\ndata:\n  round: "ROUND"\n  v: "'; cat %[1]s; echo '"'; } >%[2]s
for k in 0 1 2 3; do sed "s/NAME/$k/;s/ROUND/0/" %[2]s | kubectl create -f - >/dev/null || exit 1; done`, value, tmpl)))
		// The API server restarts once or twice after its etcd did (its
		// liveness probe failed meanwhile): a write that fails for another
		// reason than space is tried again for a while.
		replace := func(from, to int) result {
			return runQuiet(t, "bash", "-c", fmt.Sprintf(`write() { # writer round
  for try in $(seq 30); do
    sed "s/NAME/$1/;s/ROUND/$2/" %[3]s | kubectl replace -f - >/dev/null 2>%[4]s.$1 && return 0
    grep -q "database space exceeded" %[4]s.$1 && { cat %[4]s.$1 >&2; return 1; }
    [ "$try" = 30 ] && { cat %[4]s.$1 >&2; return 1; }
    sleep 2
  done
}
pids=
for k in 0 1 2 3; do
  ( for i in $(seq %[1]d %[2]d); do [ $((i %% 4)) = $k ] || continue; write $k $i || exit 1; done ) &
  pids="$pids $!"
done
rc=0
for p in $pids; do wait $p || rc=1; done
exit $rc`, from, to, tmpl, value+".err"))
		}
		round := 0
		for ; ; round += 4 {
			if used := dbSize(t, node); float64(used) > 0.82*float64(quota) {
				t.Logf("database %d of quota %d (%.0f%%) after %d writes", used, quota, 100*float64(used)/float64(quota), round)
				break
			}
			if round > 400 {
				t.Fatalf("the database did not grow past 82%% of %d", quota)
			}
			if r := replace(round, round+3); r.code != 0 {
				t.Fatalf("a write failed below 82%% of the quota: %s", r.stderr)
			}
		}
		// bbolt grows its file in steps of up to 16 MiB, so the use reached
		// is 82% or more, and check's severity follows from it: warn up to
		// 95%, fail from there.
		// The API server writes on its own too (leases, events), and bbolt
		// grows its file in steps: the file is read before and after the
		// check, and the severity must be the one either size calls for.
		severityAt := func(size int64) doctor.Severity {
			if float64(size) >= 0.95*float64(quota) {
				return doctor.Fail
			}
			return doctor.Warn
		}
		before := dbSize(t, node)
		rep, r := runCheck(t, "--window", "0", "--only", "capacity.quota")
		after := dbSize(t, node)
		x := finding(t, rep, "capacity.quota", node)
		if (x.Severity != severityAt(before) && x.Severity != severityAt(after)) || !strings.Contains(x.Found, "quota (") || !strings.Contains(x.Fix, "defrag --compact") {
			t.Errorf("quota on %s at %d..%d of %d bytes: %+v, want %s or %s", node, before, after, quota, x, severityAt(before), severityAt(after))
		}
		if (r.code == 0) != (x.Severity == doctor.Warn) {
			t.Errorf("check exited %d with the quota at %s", r.code, x.Severity)
		}
		if _, r := runCheck(t, "--window", "0", "--strict", "--only", "capacity.quota"); r.code == 0 {
			t.Errorf("check --strict exited 0 with the quota at %s", x.Severity)
		}

		// On, four writes at a time, until the API server refuses one.
		var refused result
		for ; refused.stderr == ""; round += 4 {
			if round > 800 {
				t.Fatalf("writes through the API server were never refused (quota %d, database %d)", quota, dbSize(t, node))
			}
			if r := replace(round, round+3); r.code != 0 {
				refused = r
			}
		}
		t.Logf("write %d refused: %s", round, refused.stderr)
		if !strings.Contains(refused.stderr, "database space exceeded") {
			t.Fatalf("the API server refused a write, but not for space: %s", refused.stderr)
		}
		full := dbSize(t, node)
		// No helper pod can start now (the API server's writes are refused),
		// so the maintenance commands run etcdctl in the etcd container.
		r = mustSucceed(t, kubectl(t, "etcd", "alarm", "list", "-o", "json"))
		if !strings.Contains(r.stdout, `"alarm": "NOSPACE"`) || !strings.Contains(r.stderr, "using etcdctl in the etcd containers") {
			t.Errorf("alarm list under NOSPACE: %s\n%s", r.stdout, r.stderr)
		}

		// The doctor reads the cluster the same way, and fails on the alarm.
		rep, r = runCheck(t, "--window", "0", "--only", "capacity,consistency.hashkv,topology.reachable")
		x = finding(t, rep, "capacity.alarms", node)
		if x.Severity != doctor.Fail || x.Found != "alarm NOSPACE raised" || !strings.Contains(x.Fix, "defrag --compact --disarm") || r.code == 0 {
			t.Errorf("check under NOSPACE (exit %d): alarms %+v\n%s", r.code, x, r.stderr)
		}
		if x := finding(t, rep, "consistency.hashkv", ""); x.Severity != doctor.OK {
			t.Errorf("check under NOSPACE: hashkv %+v", x)
		}
		if !strings.Contains(r.stderr, "using etcdctl in the etcd containers") {
			t.Errorf("check under NOSPACE does not say it fell back to etcdctl:\n%s", r.stderr)
		}
		// As an operator sees it (the README shows this run).
		r = kubectl(t, "etcd", "check", "--window", "0", "--only", "capacity")
		t.Logf("$ kubectl etcd check --window 0 --only capacity   (exit %d)\n%s%s", r.code, r.stdout, r.stderr)
		if r.code == 0 || !strings.Contains(r.stdout, "alarm NOSPACE raised") {
			t.Errorf("check's table under NOSPACE (exit %d):\n%s", r.code, r.stdout)
		}

		// The recovery: that command alone.
		r = mustSucceed(t, kubectl(t, "etcd", "defrag", "--compact", "--disarm", "--yes", "-o", "json"))
		var d struct {
			CompactedRevision int64
			Members           []struct {
				Name, Result  string
				Before, After *struct{ DBSize, DBSizeInUse int64 }
				Took          string
			}
			Disarmed []struct{ Alarm string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Members) != nodes {
			t.Fatalf("defrag -o json: %v\n%s", err, r.stdout)
		}
		for _, m := range d.Members {
			if m.Result != "defragmented" || m.Before == nil || m.After == nil || m.After.DBSize >= m.Before.DBSize/2 || d.CompactedRevision == 0 {
				t.Errorf("defrag did not free %s's history: %s", m.Name, r.stdout)
			} else if m.Name == node {
				t.Logf("NOSPACE recovery on %s: DB %d -> %d bytes (in use %d -> %d) in %s; quota %d; compacted at %d",
					m.Name, m.Before.DBSize, m.After.DBSize, m.Before.DBSizeInUse, m.After.DBSizeInUse, m.Took, quota, d.CompactedRevision)
			}
		}
		if len(d.Disarmed) == 0 || d.Disarmed[0].Alarm != "NOSPACE" {
			t.Errorf("defrag --disarm cleared no NOSPACE alarm: %s", r.stdout)
		}
		if after := dbSize(t, node); after >= full {
			t.Errorf("status after the recovery: DB %d, full %d", after, full)
		}
		// Writes are accepted again, through the API server.
		waitFor(t, time.Minute, func() bool { return replace(round, round).code == 0 })
		mustSucceed(t, kubectl(t, "create", "configmap", "e2e-nospace-after", "--from-literal=ok=1"))
		mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-nospace-after"))
		r = mustSucceed(t, kubectl(t, "etcd", "alarm", "list", "-o", "json"))
		if strings.Contains(r.stdout, "NOSPACE") {
			t.Errorf("an alarm is still raised: %s", r.stdout)
		}
		noHelperPods(t)
	})
}

func dbSize(t *testing.T, node string) int64 {
	st, r := getStatus(t)
	mustSucceed(t, r)
	for _, m := range st.Members {
		if m.Name == node {
			return m.DBSize
		}
	}
	t.Fatalf("no member %s", node)
	return 0
}

// TestMetricsMatchesRawScrape: the numbers of `metrics` are those of the
// exposition text etcd serves, read through the same port-forward.
func TestMetricsMatchesRawScrape(t *testing.T) {
	scenario(t)
	for _, node := range nodeNames(t) {
		r := mustSucceed(t, kubectl(t, "etcd", "metrics", "--member", node, "--window", "0", "-o", "json"))
		var ms []metrics.Metrics
		if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil || len(ms) != 1 {
			t.Fatalf("metrics -o json: %v\n%s", err, r.stdout)
		}
		raw := runQuiet(t, "kubectl", "etcd", "metrics", "--member", node, "--raw")
		mustSucceed(t, raw)
		s, err := metrics.ParseScrape(bytes.NewReader([]byte(raw.stdout)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		m := ms[0]
		if v := s.Label("etcd_server_version", "server_version"); v != m.Version || v != strings.TrimPrefix(env["ETCD_VERSION"], "v") {
			t.Errorf("%s: version %q, raw %q, cluster %s", node, m.Version, v, env["ETCD_VERSION"])
		}
		if q, _ := s.Value("etcd_server_quota_backend_bytes"); int64(q) != m.Quota || q == 0 {
			t.Errorf("%s: quota %d, raw %g", node, m.Quota, q)
		}
		if l, _ := s.Value("etcd_server_has_leader"); l != 1 || !m.HasLeader {
			t.Errorf("%s: has leader %v, raw %g", node, m.HasLeader, l)
		}
		if lc, _ := s.Value("etcd_server_leader_changes_seen_total"); int64(lc) != m.LeaderChanges {
			t.Errorf("%s: leader changes %d, raw %g", node, m.LeaderChanges, lc)
		}
		h := s.Histogram("etcd_disk_wal_fsync_duration_seconds", nil)
		if m.WALFsync.Samples == 0 || m.WALFsync.Samples > int64(h.Count) {
			t.Errorf("%s: WAL fsync samples %d, raw count %g", node, m.WALFsync.Samples, h.Count)
		}
		// The p99 lies in the bucket where the raw counts pass 99%, give
		// or take one for the fsyncs between the two reads.
		if lo, hi := p99Bucket(h); m.WALFsync.P99 < lo || m.WALFsync.P99 > hi {
			t.Errorf("%s: WAL fsync p99 %gs outside the raw histogram's p99 buckets (%g, %g]", node, m.WALFsync.P99, lo, hi)
		}
	}
	r := mustSucceed(t, kubectl(t, "etcd", "metrics", "--window", "3s"))
	if !strings.Contains(r.stdout, "WAL FSYNC P99") || strings.Count(r.stdout, "\n") != nodes+1 {
		t.Errorf("metrics table:\n%s", r.stdout)
	}
	noHelperPods(t)
}

// p99Bucket is the range of the histogram's bucket where the cumulative
// count reaches 99%, widened by a bucket on each side.
func p99Bucket(h metrics.Histogram) (lo, hi float64) {
	for i, c := range h.Counts {
		if c >= 0.99*h.Count {
			if i >= 2 {
				lo = h.Bounds[i-2]
			}
			hi = h.Bounds[min(i+1, len(h.Bounds)-1)]
			return lo, hi
		}
	}
	return 0, 0
}
