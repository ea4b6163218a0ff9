package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
)

// benchEnv, set, runs the usage benchmark (hack/bench/usage.sh).
const benchEnv = "KUBECTL_ETCD_BENCH_USAGE"

// benchResource is one resource of the benchmark's registry: its share of
// the keys and its mean value size, from what a busy cluster stores.
type benchResource struct {
	prefix string
	share  float64
	size   int
}

var benchRegistry = []benchResource{
	{"/registry/events/", 0.35, 900},
	{"/registry/pods/", 0.15, 4500},
	{"/registry/replicasets/", 0.10, 2000},
	{"/registry/configmaps/", 0.10, 1500},
	{"/registry/secrets/", 0.10, 2500},
	{"/registry/discovery.k8s.io/endpointslices/", 0.07, 1200},
	{"/registry/services/specs/", 0.04, 900},
	{"/registry/services/endpoints/", 0.04, 800},
	{"/registry/serviceaccounts/", 0.04, 400},
	{"/registry/leases/", 0.01, 350},
}

// TestUsageBenchmark times `kubectl etcd usage` on a registry of KEYS
// (default 200k) keys in a real 3-member TLS cluster, in a process of its
// own (hack/bench/usagebench: the plugin's code, wired to this cluster)
// so that its peak RSS is the command's alone, against etcdctl's
// keys-only and full reads of the same keys. hack/bench/usage.sh runs it.
func TestUsageBenchmark(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skip("benchmark: run hack/bench/usage.sh")
	}
	keys, rounds := envInt("KEYS", 200000), envInt("ROUNDS", 3)
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Fatal("the benchmark measures with GNU time: apt-get install time")
	}
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	start := time.Now()
	loaded := loadRegistry(t, cli, keys)
	st, err := cli.Status(context.Background(), c.Members[0].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("loaded %d keys, %d MiB of keys and values, in %s; DB size %d MiB\n", keys, loaded>>20, time.Since(start).Round(time.Second), st.DbSize>>20)
	desc, bench := benchCluster(t, c)
	bins, err := etcdtest.Etcdctls(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	follower := benchFollower(t, c, cli)
	etcdctl := func(args ...string) []string {
		return append([]string{bins["pinned"], "--endpoints", follower, "--cacert", c.PKI.CAFile, "--cert", c.PKI.CertFile,
			"--key", c.PKI.KeyFile, "--consistency", "s", "--command-timeout", "60s"}, args...)
	}
	var usage, keysOnly, full []measure
	for range rounds {
		usage = append(usage, measureRun(t, []string{bench, desc, "-o", "json"}))
		keysOnly = append(keysOnly, measureRun(t, etcdctl("get", "--prefix", "/registry/", "--keys-only")))
		full = append(full, measureRun(t, etcdctl("get", "--prefix", "/registry/", "-w", "protobuf")))
	}
	var rep keyspace.UsageReport
	if err := json.Unmarshal(usage[0].stdout, &rep); err != nil || rep.Total.Keys != int64(keys) || rep.Role != "follower" {
		t.Fatalf("usage report (%v): %d keys, read from %s, want %d from a follower", err, rep.Total.Keys, rep.Role, keys)
	}
	if n := bytes.Count(keysOnly[0].stdout, []byte("/registry/")); n != keys {
		t.Fatalf("etcdctl --keys-only listed %d keys, want %d", n, keys)
	}
	u, k, f := median(usage), median(keysOnly), median(full)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("usage benchmark, %d keys, %d rounds, 3 members, read from a follower; load average %s\n", keys, rounds, strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Printf("  kubectl etcd usage                         median %6.2f s   peak RSS %4d MiB   (targets: 5 s, 100 MiB)\n", u.secs, u.rssMiB)
	fmt.Printf("  etcdctl get --prefix /registry --keys-only median %6.2f s   peak RSS %4d MiB   usage/keys-only time %.2f\n", k.secs, k.rssMiB, u.secs/k.secs)
	fmt.Printf("  etcdctl get --prefix /registry (values)    median %6.2f s   peak RSS %4d MiB   usage/values time %.2f, RSS %.2f\n", f.secs, f.rssMiB, u.secs/f.secs, float64(u.rssMiB)/float64(f.rssMiB))
	if u.secs > 5 || u.rssMiB > 100 {
		fmt.Printf("  TARGET MISSED\n")
		t.Fail()
	}
}

// benchCluster builds hack/bench/usagebench, the plugin's usage command
// wired to c, and writes the description of c it reads.
func benchCluster(t *testing.T, c *etcdtest.Cluster) (desc, bin string) {
	t.Helper()
	dir := t.TempDir()
	bin = dir + "/usagebench"
	root, err := osexec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	build := osexec.Command("go", "build", "-o", bin, "./hack/bench/usagebench")
	build.Dir = strings.TrimSpace(string(root))
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building usagebench: %v\n%s", err, msg)
	}
	type cluster struct {
		Pods  []*corev1.Pod     `json:"pods"`
		Addrs map[string]string `json:"addrs"`
	}
	cl := cluster{Addrs: map[string]string{}}
	for i, m := range c.Members {
		p := c.Pod(i, etcdtest.Image)
		cl.Pods = append(cl.Pods, p)
		cl.Addrs[p.Name] = strings.TrimPrefix(m.ClientURL, "https://")
	}
	b, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	desc = dir + "/cluster.json"
	if err := os.WriteFile(desc, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return desc, bin
}

// loadRegistry writes n keys shaped like the API server's, in
// transactions of 128 puts, and returns their bytes.
func loadRegistry(t *testing.T, cli *clientv3.Client, n int) int64 {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	blob := make([]byte, 64<<10)
	for i := range blob {
		blob[i] = byte('a' + rnd.IntN(26))
	}
	ctx := context.Background()
	var leases []clientv3.LeaseID
	for range 1 + n/20000 {
		l, err := cli.Grant(ctx, 3600)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l.ID)
	}
	var ops []clientv3.Op
	var total int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	flush := func() {
		batch := ops
		ops = nil
		g.Go(func() error { _, err := cli.Txn(gctx).Then(batch...).Commit(); return err })
	}
	i := 0
	for _, r := range benchRegistry {
		for j := range int(r.share * float64(n)) {
			key := benchKey(r.prefix, i, j)
			size := r.size*7/10 + rnd.IntN(r.size*6/10+1)
			off := rnd.IntN(len(blob) - size)
			var opts []clientv3.OpOption
			if r.prefix == "/registry/events/" {
				opts = append(opts, clientv3.WithLease(leases[j%len(leases)]))
			}
			ops = append(ops, clientv3.OpPut(key, string(blob[off:off+size]), opts...))
			total += int64(len(key) + size)
			if i++; len(ops) == 128 {
				flush()
			}
		}
	}
	for ; i < n; i++ { // rounding: the rest are config maps
		key := benchKey("/registry/configmaps/", i, i)
		ops = append(ops, clientv3.OpPut(key, string(blob[:1000])))
		total += int64(len(key) + 1000)
	}
	flush()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return total
}

// benchKey is /registry/<resource>/<namespace>/<name>, in one of 200
// namespaces.
func benchKey(prefix string, i, j int) string {
	return fmt.Sprintf("%sns-%03d/object-%07d-%05x", prefix, j%200, j, i*2654435761%0xfffff)
}

// benchFollower is a follower's client URL.
func benchFollower(t *testing.T, c *etcdtest.Cluster, cli *clientv3.Client) string {
	t.Helper()
	for _, m := range c.Members {
		st, err := cli.Status(context.Background(), m.ClientURL)
		if err == nil && st.Leader != st.Header.MemberId {
			return m.ClientURL
		}
	}
	t.Fatal("no follower")
	return ""
}

type measure struct {
	secs   float64
	rssMiB int64
	stdout []byte
}

// measureRun runs a command line with extra environment under GNU time,
// for its wall time and peak RSS: the rusage of a direct child would
// count this process's memory, which the child shares until its exec.
func measureRun(t *testing.T, argv []string, env ...string) measure {
	t.Helper()
	tf := t.TempDir() + "/time"
	cmd := osexec.Command("/usr/bin/time", append([]string{"-f", "%e %M", "-o", tf}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if strings.Contains(strings.Join(argv, " "), "protobuf") {
		cmd.Stdout = io.Discard
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(argv, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	b, err := os.ReadFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	var m measure
	var kib int64
	if _, err := fmt.Sscanf(string(b), "%f %d", &m.secs, &kib); err != nil {
		t.Fatalf("GNU time said %q: %v", b, err)
	}
	m.rssMiB, m.stdout = kib>>10, stdout.Bytes()
	return m
}

// median is the run with the median time, and the highest peak RSS of
// all.
func median(ms []measure) measure {
	s := append([]measure(nil), ms...)
	sort.Slice(s, func(i, j int) bool { return s[i].secs < s[j].secs })
	m := s[len(s)/2]
	for _, x := range ms {
		m.rssMiB = max(m.rssMiB, x.rssMiB)
	}
	return m
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
