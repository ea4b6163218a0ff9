//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/kubectl-etcd/kubectl-etcd/internal/s3test"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
)

// TestScheduleToS3 installs a schedule of backups to S3 (versitygw in the
// first node's network namespace, at the node's address) whose CronJob
// runs this checkout's plugin in its image, runs it three times by hand,
// and reads back what it left: the retention kept the newest two of its
// files, each decrypts with the schedule's age identity and verifies, the
// record in its Lease and schedule list say the newest, snapshot list and
// get read the bucket from here and check names its newest backup, no
// pod or output shows the secret key, and --uninstall removes the schedule's objects
// and none of its backups.
func TestScheduleToS3(t *testing.T) {
	scenario(t)
	apiServiceReachable(t)
	loadPluginImage(t)
	dir := t.TempDir()
	key, recipient := ageKey(t, dir)
	gw := startNodeS3(t, nodeNames(t)[0])
	const bucket, ns, name, secret = "e2e-schedule", "e2e-schedule", "e2e", "e2e-s3"
	obj := "kubectl-etcd-backup-" + name
	gw.createBucket(t, bucket)
	testNamespace(t, ns)
	s3Secret(t, ns, secret, gw)
	var said strings.Builder // every output, to look for the secret key in
	said.WriteString(installSchedule(t, ns, obj, "etcd", "schedule", "backup", name, "--schedule", "*/1 * * * *",
		"--to", "s3://"+bucket+"/e2e", "--s3-endpoint", gw.endpoint, "--s3-secret", secret, "--recipient", recipient,
		"--keep", "2", "--schedule-namespace", ns, "--backup-image", env["HC_PLUGIN_IMAGE"]))
	files, logs := runByHand(t, ns, name, 3)
	said.WriteString(logs)
	newest, older := files[2], files[1]

	keys := gw.list(t, bucket, "e2e/")
	if want := []string{"e2e/" + older, "e2e/" + newest}; !slices.Equal(keys, want) {
		t.Fatalf("with --keep 2 after 3 runs, the bucket holds %q under e2e/; want %q", keys, want)
	}
	if u := gw.uploads(t, bucket); len(u) != 0 {
		t.Errorf("multipart uploads left in progress: %q", u)
	}
	rec := leaseRecord(t, ns, obj)
	size := readBackups(t, gw, bucket, dir, key, []string{older, newest}, rec)
	checkRecord(t, rec, newest, older, size)
	said.WriteString(checkList(t, ns, name, bucket, newest))
	said.WriteString(browseBackups(t, gw, ns, secret, bucket, dir, key, older, newest))

	said.WriteString(uninstallSchedule(t, ns, name, obj))
	if after := gw.list(t, bucket, "e2e/"); !slices.Equal(after, keys) {
		t.Errorf("--uninstall touched the backups: %q, then %q", keys, after)
	}
	if strings.Contains(said.String(), gw.secretKey) {
		t.Errorf("the S3 secret key was printed (by the install, a run, schedule list or --uninstall)")
	}
}

// installSchedule runs `kubectl etcd schedule backup` (install) with
// --dry-run=client -o yaml, which must print a CronJob of the image and
// install nothing, then for real, and suspends the CronJob. It returns
// what both printed.
// browseBackups reads the bucket as an operator would from the
// workstation: snapshot list, newest first, each file verified through
// its decryption; snapshot get of the newest, 0600 and the bucket's very
// bytes, which verifies; and check's finding on the schedule: suspended
// (as the test left it), its newest backup named.
func browseBackups(t *testing.T, gw *nodeS3, ns, secret, bucket, dir, key, older, newest string) string {
	t.Helper()
	dest := "s3://" + bucket + "/e2e"
	s3 := []string{"--s3-endpoint", gw.endpoint, "--s3-secret", secret, "-n", ns}
	var said strings.Builder
	r := mustSucceed(t, kubectl(t, append([]string{"etcd", "snapshot", "list", dest, "--verify", "--identity", key, "-o", "json"}, s3...)...))
	said.WriteString(r.stdout + r.stderr)
	var list []struct {
		Name, Schedule string
		Size           int64
		Verified       *struct{ Content bool }
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("snapshot list -o json: %v\n%s", err, r.stdout)
	}
	if len(list) != 2 || list[0].Name != newest || list[1].Name != older {
		t.Errorf("snapshot list %s: %+v; want %s, then %s", dest, list, newest, older)
	}
	for _, b := range list {
		if b.Schedule != "e2e" || b.Size <= 0 || b.Verified == nil || !b.Verified.Content {
			t.Errorf("snapshot list --verify: %+v; want the schedule e2e's file, its content verified", b)
		}
	}
	table := mustSucceed(t, kubectl(t, append([]string{"etcd", "snapshot", "list", dest}, s3...)...))
	said.WriteString(table.stdout + table.stderr)
	if !strings.Contains(table.stdout, newest) || !strings.Contains(table.stdout, "NAME") {
		t.Errorf("snapshot list table:\n%s", table.stdout)
	}

	file := filepath.Join(dir, "got-"+newest)
	g := mustSucceed(t, kubectl(t, append([]string{"etcd", "snapshot", "get", dest, newest, file}, s3...)...))
	said.WriteString(g.stdout + g.stderr)
	got, err := os.ReadFile(file)
	if st, serr := os.Stat(file); err != nil || serr != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot get wrote %s: %v %v %v", file, st, err, serr)
	}
	if want := gw.get(t, bucket, "e2e/"+newest); !bytes.Equal(got, want) {
		t.Errorf("snapshot get: %d bytes, the bucket holds %d", len(got), len(want))
	}
	mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", file, "--identity", key))
	if r := kubectl(t, append([]string{"etcd", "snapshot", "get", dest, newest, file}, s3...)...); r.code == 0 {
		t.Errorf("snapshot get over an existing file succeeded:\n%s%s", r.stdout, r.stderr)
	}

	rep, _ := runCheck(t, "--only", "backups")
	found := false
	for _, x := range rep.Results {
		if x.ID() == "backups.schedules" && strings.Contains(x.Found, ns+"/e2e") {
			found = true
			// The test suspended the CronJob (its runs are started by
			// hand): check says so, and still names the newest backup.
			if x.Severity != doctor.Warn || !strings.Contains(x.Found, "suspended") || !strings.Contains(x.Found, newest) {
				t.Errorf("check backups.schedules: %s %s (fix: %s); want a warning that it is suspended, naming %s", x.Severity, x.Found, x.Fix, newest)
			}
		}
	}
	if !found {
		t.Errorf("check --only backups says nothing of schedule %s/e2e: %+v", ns, rep.Results)
	}
	return said.String()
}

func installSchedule(t *testing.T, ns, obj string, install ...string) string {
	t.Helper()
	r := mustSucceed(t, kubectl(t, append(install, "--dry-run=client", "-o", "yaml")...))
	said := r.stdout + r.stderr
	if !strings.Contains(r.stdout, "\nkind: CronJob\n") || !strings.Contains(r.stdout, "image: "+env["HC_PLUGIN_IMAGE"]+"\n") {
		t.Errorf("--dry-run=client -o yaml printed no CronJob running %s:\n%s", env["HC_PLUGIN_IMAGE"], r.stdout)
	}
	if left := scheduleObjects(t, ns, obj); left != "" {
		t.Fatalf("--dry-run=client installed:\n%s", left)
	}
	// Installed and suspended well before its next minute, so that the
	// schedule most likely starts no job of its own.
	if s := time.Now().Second(); s >= 45 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
	r = mustSucceed(t, kubectl(t, install...))
	if n := strings.Count(r.stdout, " created\n"); n != 6 {
		t.Errorf("the install created %d objects, want 6:\n%s", n, r.stdout)
	}
	// The test runs it by hand, one run after the other, instead of
	// waiting minutes for the schedule: suspended, it starts none beside
	// them (the CronJob's Forbid does not cover jobs created by hand).
	// One it started before is waited for.
	mustSucceed(t, kubectl(t, "patch", "cronjob", obj, "-n", ns, "--type=merge", "-p", `{"spec":{"suspend":true}}`))
	waitJobsDone(t, ns)
	return said + r.stdout + r.stderr
}

// runByHand runs the schedule n times, one Job from its CronJob after
// the other, and returns the file each run recorded, which must be named
// as the schedule names its files, and the runs' logs. The first run's
// pods must be labelled as kubectl etcd's and the schedule's.
func runByHand(t *testing.T, ns, name string, n int) (files []string, logs string) {
	t.Helper()
	obj := "kubectl-etcd-backup-" + name
	fileName := regexp.MustCompile(`^` + name + `-[0-9]{8}T[0-9]{6}Z\.db\.zst\.age$`)
	for i := 1; i <= n; i++ {
		job := fmt.Sprintf("run-%d", i)
		mustSucceed(t, kubectl(t, "create", "job", "--from=cronjob/"+obj, job, "-n", ns))
		logs += waitJob(t, ns, job)
		files = append(files, leaseRecord(t, ns, obj)["kubectl-etcd.io/last-file"])
	}
	jobPodLabelled(t, ns, "run-1", name)
	distinct := slices.Compact(slices.Sorted(slices.Values(files)))
	for _, f := range files {
		if !fileName.MatchString(f) || len(distinct) != len(files) {
			t.Fatalf("the runs recorded files %q; want each its own, named %s", files, fileName)
		}
	}
	return files, logs
}

// uninstallSchedule runs --uninstall, which must say it deleted each of
// the schedule's objects, and waits until they are gone, and the runs'
// jobs and pods with their CronJob. It returns what it printed.
func uninstallSchedule(t *testing.T, ns, name, obj string) string {
	t.Helper()
	r := mustSucceed(t, kubectl(t, "etcd", "schedule", "backup", name, "--uninstall", "--schedule-namespace", ns))
	for _, kind := range []string{"cronjob.batch", "lease.coordination.k8s.io", "rolebinding.rbac.authorization.k8s.io", "role.rbac.authorization.k8s.io", "serviceaccount", "configmap"} {
		if !strings.Contains(r.stdout, kind+"/"+obj+" deleted\n") {
			t.Errorf("--uninstall did not say it deleted %s/%s:\n%s", kind, obj, r.stdout)
		}
	}
	waitFor(t, time.Minute, func() bool { return scheduleObjects(t, ns, obj) == "" })
	noHelperPods(t)
	return r.stdout + r.stderr
}

// apiServiceReachable fails the test unless every node's host network
// reaches the kubernetes Service, where the schedule's job records its
// runs. There is no kube-proxy: hack/cluster/up.sh leads it to the
// node's API server, and a cluster brought up before it did so fails
// here, saying so.
func apiServiceReachable(t *testing.T) {
	t.Helper()
	svc := env["HC_API_SERVICE_IP"] + ":443"
	for _, n := range nodeNames(t) {
		if r := nodeExec(t, n, "timeout", "5", "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(svc, ":", "/", 1)); r.code != 0 {
			t.Fatalf("%s's host network does not reach the kubernetes Service at %s, where the schedule's job records its runs: this cluster predates up.sh's route to it; bring it up again (hack/cluster/up.sh)", n, svc)
		}
	}
}

// loadPluginImage builds the image the schedule runs from the plugin
// TestMain built, and imports it into every node (cheap when it is
// there already).
func loadPluginImage(t *testing.T) {
	t.Helper()
	mustSucceed(t, runCmd(t, "bash", filepath.Join(root, "hack/cluster/load-plugin-image.sh"), "--binary", filepath.Join(binDir, "kubectl-etcd")))
}

// scheduleObjects names the schedule's objects left in ns.
func scheduleObjects(t *testing.T, ns, obj string) string {
	t.Helper()
	var refs []string
	for _, kind := range []string{"cronjob", "lease", "rolebinding", "role", "serviceaccount", "configmap"} {
		refs = append(refs, kind+"/"+obj)
	}
	r := mustSucceed(t, runQuiet(t, "kubectl", append([]string{"get", "-n", ns, "--ignore-not-found", "-o", "name"}, refs...)...))
	return strings.TrimSpace(r.stdout)
}

// s3Secret creates the Secret the schedule's pod reads its S3 keys from,
// from a file: the secret key is on no command line and in no log.
func s3Secret(t *testing.T, ns, name string, gw *nodeS3) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "s3.env")
	keys := "AWS_ACCESS_KEY_ID=" + gw.accessKey + "\nAWS_SECRET_ACCESS_KEY=" + gw.secretKey + "\n"
	if err := os.WriteFile(f, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, kubectl(t, "create", "secret", "generic", name, "-n", ns, "--from-env-file="+f))
}

// waitJob waits for a Job to complete and returns its pods' logs; a Job
// that failed, or took over 5 minutes, fails the test with its pods'
// logs, its description and the namespace's events, and one whose first
// pod failed (the Job retries once) is an error.
func waitJob(t *testing.T, ns, job string) string {
	t.Helper()
	sel := "batch.kubernetes.io/job-name=" + job
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r := runQuiet(t, "kubectl", "get", "job", job, "-n", ns, "-o", `jsonpath={.status.failed} {.status.conditions[?(@.status=="True")].type}`)
		failed, conds, _ := strings.Cut(r.stdout, " ")
		switch {
		case slices.Contains(strings.Fields(conds), "Complete"):
			if failed != "" && failed != "0" {
				t.Errorf("job %s/%s completed after %s failed pod(s)\n%s", ns, job, failed, jobDiagnostics(t, ns, sel))
			}
			logs := kubectl(t, "logs", "-n", ns, "-l", sel, "--all-containers", "--prefix", "--tail=-1")
			return logs.stdout + logs.stderr
		case slices.Contains(strings.Fields(conds), "Failed"), time.Now().After(deadline):
			t.Fatalf("job %s/%s did not complete (true conditions: %q)\n%s", ns, job, conds, jobDiagnostics(t, ns, sel))
		}
		time.Sleep(2 * time.Second)
	}
}

// waitJobsDone waits until every Job in ns has completed; one that
// failed fails the test.
func waitJobsDone(t *testing.T, ns string) {
	t.Helper()
	waitFor(t, 5*time.Minute, func() bool {
		r := mustSucceed(t, runQuiet(t, "kubectl", "get", "jobs", "-n", ns, "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.status=="True")].type}{"\n"}{end}`))
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			job, conds, _ := strings.Cut(line, "=")
			switch {
			case line == "" || strings.Contains(conds, "Complete"):
			case strings.Contains(conds, "Failed"):
				t.Fatalf("the schedule's own job %s failed\n%s", job, jobDiagnostics(t, ns, "batch.kubernetes.io/job-name="+job))
			default:
				return false
			}
		}
		return true
	})
}

// jobDiagnostics is what says why a Job's pods failed.
func jobDiagnostics(t *testing.T, ns, selector string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"logs", "-n", ns, "-l", selector, "--all-containers", "--prefix", "--tail=-1"},
		{"get", "pods", "-n", ns, "-l", selector, "-o", "wide"},
		{"describe", "jobs", "-n", ns, "-l", selector},
		{"describe", "pods", "-n", ns, "-l", selector},
		{"get", "events", "-n", ns, "--sort-by=.lastTimestamp"},
	} {
		r := runQuiet(t, "kubectl", args...)
		fmt.Fprintf(&b, "$ kubectl %s\n%s%s\n", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return b.String()
}

// jobPodLabelled checks that the pods of a run carry the labels every
// object kubectl etcd makes carries, and the schedule's.
func jobPodLabelled(t *testing.T, ns, job, schedule string) {
	t.Helper()
	r := mustSucceed(t, kubectl(t, "get", "pods", "-n", ns, "-l", "batch.kubernetes.io/job-name="+job, "-o", "json"))
	var pods struct {
		Items []struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &pods); err != nil || len(pods.Items) == 0 {
		t.Fatalf("no pod of job %s/%s: %v", ns, job, err)
	}
	for _, p := range pods.Items {
		l := p.Metadata.Labels
		if l["app.kubernetes.io/managed-by"] != "kubectl-etcd" || l["kubectl-etcd.io/schedule"] != schedule {
			t.Errorf("pod %s of job %s is labelled %v; want app.kubernetes.io/managed-by=kubectl-etcd and kubectl-etcd.io/schedule=%s", p.Metadata.Name, job, l, schedule)
		}
	}
}

// leaseRecord is the record the schedule's runs keep in its Lease.
func leaseRecord(t *testing.T, ns, lease string) map[string]string {
	t.Helper()
	r := mustSucceed(t, runQuiet(t, "kubectl", "get", "lease", lease, "-n", ns, "-o", "json"))
	var l struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatal(err)
	}
	return l.Metadata.Annotations
}

// readBackups downloads the schedule's files, checks that each decrypts
// with the schedule's identity and that snapshot verify passes it, and
// checks the newest (the last of names) against the record: its sha256,
// and snapshot inspect's and etcdutl's revision. It returns the newest
// snapshot's size, decrypted and decompressed.
func readBackups(t *testing.T, gw *nodeS3, bucket, dir, key string, names []string, rec map[string]string) int64 {
	t.Helper()
	var plain []byte
	for _, n := range names {
		data := gw.get(t, bucket, "e2e/"+n)
		file := filepath.Join(dir, n)
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		plain = decryptSnapshot(t, data, key)
		mustSucceed(t, kubectl(t, "etcd", "snapshot", "verify", file, "--identity", key))
		if sum := sha256.Sum256(data); n == names[len(names)-1] && hex.EncodeToString(sum[:]) != rec["kubectl-etcd.io/last-sha256"] {
			t.Errorf("%s has sha256 %x; the record says %s", n, sum, rec["kubectl-etcd.io/last-sha256"])
		}
	}
	// Restoring from a scheduled snapshot is a follow-up (snapshot get
	// from a schedule's destination, then restore); reading it back is
	// covered here.
	newest := filepath.Join(dir, names[len(names)-1])
	var rep inspectReport
	r := mustSucceed(t, kubectl(t, "etcd", "snapshot", "inspect", newest, "--identity", key, "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "newest.db")
	if err := os.WriteFile(db, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	var status struct {
		Revision int64 `json:"revision"`
	}
	out := mustSucceed(t, runCmd(t, env["HC_ETCDUTL"], "snapshot", "status", db, "-w", "json"))
	if err := json.Unmarshal([]byte(out.stdout), &status); err != nil {
		t.Fatal(err)
	}
	if want := rec["kubectl-etcd.io/last-revision"]; strconv.FormatInt(rep.Revision, 10) != want || strconv.FormatInt(status.Revision, 10) != want {
		t.Errorf("the newest backup's revision: inspect %d, etcdutl %d; the record says %s", rep.Revision, status.Revision, want)
	}
	return int64(len(plain))
}

// decryptSnapshot is a scheduled file as etcd wrote it: age-decrypted
// with the identity in keyFile, then zstd-decompressed.
func decryptSnapshot(t *testing.T, data []byte, keyFile string) []byte {
	t.Helper()
	f, err := os.Open(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(bytes.NewReader(data), ids...)
	if err != nil {
		t.Fatalf("the backup does not decrypt with the schedule's identity: %v", err)
	}
	zr, err := zstd.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	plain, err := io.ReadAll(zr)
	if err != nil || len(plain) == 0 {
		t.Fatalf("the decrypted backup is no zstd stream (%d bytes): %v", len(plain), err)
	}
	return plain
}

// checkRecord checks the Lease's record after the runs: a success, the
// newest file as the last, its size, and the two files kept.
func checkRecord(t *testing.T, rec map[string]string, newest, older string, size int64) {
	t.Helper()
	var kept []struct{ Name string }
	if err := json.Unmarshal([]byte(rec["kubectl-etcd.io/kept-files"]), &kept); err != nil {
		t.Errorf("kept-files %q: %v", rec["kubectl-etcd.io/kept-files"], err)
	}
	var names []string
	for _, k := range kept {
		names = append(names, k.Name)
	}
	if rec["kubectl-etcd.io/last-success"] == "" || rec["kubectl-etcd.io/last-error"] != "" || rec["kubectl-etcd.io/last-file"] != newest ||
		rec["kubectl-etcd.io/last-size"] != strconv.FormatInt(size, 10) || !slices.Equal(names, []string{newest, older}) {
		t.Errorf("the Lease's record %v; want a last success of %s (%d bytes of snapshot), no error, and kept %s then %s", rec, newest, size, newest, older)
	}
}

// checkList checks schedule list: the schedule, its destination, a last
// success of the newest file and two kept. It returns what it printed.
func checkList(t *testing.T, ns, name, bucket, newest string) string {
	t.Helper()
	r := mustSucceed(t, kubectl(t, "etcd", "schedule", "list", "--schedule-namespace", ns, "-o", "json"))
	var ss []struct {
		Name, Destination string
		Record            struct {
			LastSuccess, LastFile string
			Kept                  []struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Name != name || ss[0].Destination != "s3://"+bucket+"/e2e/" || ss[0].Record.LastSuccess == "" ||
		ss[0].Record.LastFile != newest || len(ss[0].Record.Kept) != 2 {
		t.Errorf("schedule list -o json: %+v; want %s to s3://%s/e2e/, last success %s, 2 kept", ss, name, bucket, newest)
	}
	table := mustSucceed(t, kubectl(t, "etcd", "schedule", "list", "--schedule-namespace", ns))
	if !strings.Contains(table.stdout, name+" ") || !strings.Contains(table.stdout, "keep the newest 2") {
		t.Errorf("schedule list does not show %s keeping the newest 2:\n%s", name, table.stdout)
	}
	return r.stdout + r.stderr + table.stdout + table.stderr
}

// nodeS3 is versitygw serving S3 in a node's network namespace, at the
// node's address: the schedule's pods (in the host network of whichever
// control-plane node runs them) and this test (on the host, over the
// cluster's bridge) reach it there.
type nodeS3 struct {
	endpoint             string
	accessKey, secretKey string
	client               *s3.Client
}

// s3HTTP goes to the node straight, whatever proxy the environment names.
var s3HTTP = &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}

// startNodeS3 starts versitygw on node, at a free port of its address,
// with a POSIX backend in a temp dir and a root key of its own, and kills
// it, by its PID, when the test ends.
func startNodeS3(t *testing.T, node string) *nodeS3 {
	t.Helper()
	bin := versitygw(t)
	ip := strings.TrimSpace(mustSucceed(t, kubectl(t, "get", "node", node, "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)).stdout)
	if net.ParseIP(ip) == nil {
		t.Fatalf("node %s has no InternalIP (%q)", node, ip)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "root")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &nodeS3{accessKey: "e2e" + randomHex(t, 4), secretKey: randomHex(t, 20)}
	// A port taken between the probe and versitygw's bind costs a try.
	for try := 1; ; try++ {
		addr := net.JoinHostPort(ip, strconv.Itoa(20000+mathrand.IntN(10000)))
		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			c.Close()
			continue
		}
		err := g.launch(t, bin, node, addr, data, filepath.Join(dir, fmt.Sprintf("versitygw-%d.log", try)))
		if err == nil {
			break
		}
		if try == 3 {
			t.Fatalf("versitygw did not start on %s: %v", node, err)
		}
	}
	g.client = s3.New(s3.Options{
		HTTPClient: s3HTTP, Region: "us-east-1", BaseEndpoint: aws.String(g.endpoint), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: g.accessKey, SecretAccessKey: g.secretKey}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return g
}

// launch starts versitygw at addr in node's namespaces, and waits until
// it answers HTTP there.
func (g *nodeS3) launch(t *testing.T, bin, node, addr, data, log string) error {
	t.Helper()
	logf, err := os.Create(log)
	if err != nil {
		return err
	}
	defer logf.Close()
	// node-exec.sh execs nsenter, which execs versitygw (it forks only to
	// enter a PID namespace): the PID started is versitygw's.
	cmd := exec.Command("bash", filepath.Join(root, "hack/cluster/node-exec.sh"), node,
		bin, "--port", addr, "--region", "us-east-1", "--quiet", "posix", data)
	// The keys go in the environment, not on a command line anyone can read.
	cmd.Env = append(envWithout("VGW_", "ROOT_", "AWS_"), "ROOT_ACCESS_KEY="+g.accessKey, "ROOT_SECRET_KEY="+g.secretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	g.endpoint = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited: %v\n%s", bin, err, tailFile(log))
		case <-time.After(100 * time.Millisecond):
		}
		// Any HTTP answer (a 403 to an unsigned request) means it serves.
		if resp, err := s3HTTP.Get(g.endpoint + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("%s did not answer at %s within 20s\n%s", bin, g.endpoint, tailFile(log))
		}
	}
	t.Logf("versitygw (%s) serving %s in %s's network namespace, PID %d", bin, g.endpoint, node, cmd.Process.Pid)
	t.Cleanup(func() {
		stop()
		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			c.Close()
			t.Errorf("something still listens at %s after versitygw (PID %d) was killed", addr, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("versitygw's log:\n%s", tailFile(log))
		}
	})
	return nil
}

// versitygw finds the server where the integration tests do
// (s3test.Binary); hack/test.sh installs it. Without it the test fails,
// never skips: the schedule's S3 destination is tested against a
// cluster nowhere else.
func versitygw(t *testing.T) string {
	t.Helper()
	p, err := s3test.Binary()
	if err != nil {
		t.Fatalf("%v; build it with\n\t%s\nor point VERSITYGW at it", err, s3test.Install)
	}
	return p
}

func (g *nodeS3) createBucket(t *testing.T, bucket string) {
	t.Helper()
	if _, err := g.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("creating bucket %s at %s: %v", bucket, g.endpoint, err)
	}
}

// list is the keys under prefix, sorted.
func (g *nodeS3) list(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	out, err := g.client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatalf("listing s3://%s/%s: %v", bucket, prefix, err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	slices.Sort(keys)
	return keys
}

func (g *nodeS3) get(t *testing.T, bucket, key string) []byte {
	t.Helper()
	out, err := g.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("getting s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("reading s3://%s/%s: %v", bucket, key, err)
	}
	return b
}

// uploads are the keys of the bucket's multipart uploads in progress.
func (g *nodeS3) uploads(t *testing.T, bucket string) []string {
	t.Helper()
	out, err := g.client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("listing the uploads in %s: %v", bucket, err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, path.Join(bucket, aws.ToString(u.Key)))
	}
	return keys
}

// envWithout is this process's environment without the variables whose
// names start with one of prefixes.
func envWithout(prefixes ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			out = append(out, kv)
		}
	}
	return out
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// tailFile is the end of a log file.
func tailFile(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// A schedule's snapshot restores straight from its destination: a
// schedule that keeps its backups in a dir on the control-plane nodes runs
// once, and restore NAME --from node:DIR finds the file on whichever node
// ran the job, copies it (still encrypted) into a dir of its own in
// TMPDIR, restores it, and removes the copy; the node keeps its file.
func TestRestoreFromSchedule(t *testing.T) {
	scenario(t)
	apiServiceReachable(t)
	loadPluginImage(t)
	key, recipient := ageKey(t, t.TempDir())
	const ns, name = "e2e-restore-from", "e2e-restore"
	const backups = "/var/lib/kubectl-etcd-e2e-backups"
	obj := "kubectl-etcd-backup-" + name
	t.Cleanup(func() {
		for _, n := range nodeNames(t) {
			nodeExec(t, n, "rm", "-rf", backups)
		}
	})
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-a", "e2e-restore-b", "--ignore-not-found"))
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-restore-a", "--from-literal=k=a"))
	testNamespace(t, ns)
	installSchedule(t, ns, obj, "etcd", "schedule", "backup", name, "--schedule", "0 3 * * *",
		"--to", "node:"+backups, "--recipient", recipient, "--keep", "2", "--schedule-namespace", ns, "--backup-image", env["HC_PLUGIN_IMAGE"])
	files, _ := runByHand(t, ns, name, 1)
	// The schedule's objects are in the snapshot, suspended: removed now,
	// they come back with the restore, and are removed again after it.
	uninstallSchedule(t, ns, name, obj)
	mustSucceed(t, kubectl(t, "create", "configmap", "e2e-restore-b", "--from-literal=k=b"))
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-a"))
	before, _ := getStatus(t)

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	r := mustSucceed(t, kubectl(t, restoreCmd(files[0], "--from", "node:"+backups, "--identity", key, "--yes")...))
	if !strings.Contains(r.stderr, "Copied "+files[0]+" from node:"+backups+" on node ") || !strings.Contains(r.stderr, "decrypted and checked against etcd's sha256 trailer") {
		t.Errorf("restore --from does not say what it copied and checked:\n%s", r.stderr)
	}
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Errorf("restore --from left its copy in TMPDIR: %v %v", left, err)
	}
	// The snapshot holds the run's own Job and pod (it was taken by that
	// pod): the kubelets restart as the summary says, then the schedule
	// goes, with them, before the restored cluster is checked.
	restartKubelets(t, r.stdout)
	uninstallSchedule(t, ns, name, obj)
	checkRestored(t, before, r.stdout)
	list := mustSucceed(t, kubectl(t, "etcd", "snapshot", "list", "node:"+backups))
	if !strings.Contains(list.stdout, files[0]) {
		t.Errorf("the node no longer lists %s after the restore:\n%s", files[0], list.stdout)
	}
	mustSucceed(t, kubectl(t, "delete", "configmap", "e2e-restore-a", "--ignore-not-found"))
}
