// Command loadetcd fills an etcd with benchmark data under a prefix until
// its database holds a size, in one of two shapes:
//
//	random   each value its own random bytes in base64 (750 kB): nothing
//	         to compress but what base64 wastes
//	objects  values shaped like the objects a cluster stores: ConfigMaps
//	         in JSON (names, labels, managedFields, config text) of 2 to
//	         40 KiB, and one Secret in eight holding random key material;
//	         generated from a fixed seed, so every run loads the same data
//
// hack/bench/lib.sh runs it on a node, against the member's loopback.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	endpoint := flag.String("endpoint", "https://127.0.0.1:2379", "etcd client URL")
	cacert := flag.String("cacert", "", "etcd's CA")
	cert := flag.String("cert", "", "client certificate")
	key := flag.String("key", "", "its key")
	mib := flag.Int64("mib", 512, "load until the database holds this many MiB")
	shape := flag.String("shape", "random", "random or objects")
	prefix := flag.String("prefix", "/bench/", "key prefix")
	flag.Parse()
	if err := run(*endpoint, *cacert, *cert, *key, *mib<<20, *shape, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "loadetcd:", err)
		os.Exit(1)
	}
}

func run(endpoint, cacert, cert, key string, size int64, shape, prefix string) error {
	if shape != "random" && shape != "objects" {
		return fmt.Errorf("unknown --shape %q: want random or objects", shape)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(cacert)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second,
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool}, MaxCallSendMsgSize: 2 << 20})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx := context.Background()
	dbSize := func() (int64, error) {
		st, err := cli.Status(ctx, endpoint)
		if err != nil {
			return 0, err
		}
		return st.DbSize, nil
	}
	have, err := dbSize()
	if err != nil {
		return err
	}
	start := time.Now()
	var next atomic.Int64
	for have < size {
		// Batches of about 32 MiB, then the size again.
		var wg sync.WaitGroup
		var failed atomic.Pointer[error]
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for written := 0; written < 8<<20 && failed.Load() == nil; {
					i := next.Add(1)
					k, v := value(shape, rand.New(rand.NewPCG(uint64(i), 7)), i)
					if _, err := cli.Put(ctx, prefix+k, v); err != nil {
						failed.Store(&err)
						return
					}
					written += len(v)
				}
			}()
		}
		wg.Wait()
		if e := failed.Load(); e != nil {
			return *e
		}
		if have, err = dbSize(); err != nil {
			return err
		}
	}
	fmt.Printf("loaded %d %s values under %s in %s: the database holds %d MiB\n", next.Load(), shape, prefix, time.Since(start).Round(time.Second), have>>20)
	return nil
}

// value is the i-th key and value of shape; r is seeded by i alone, so
// the data does not depend on the workers' interleaving.
func value(shape string, r *rand.Rand, i int64) (string, string) {
	if shape == "random" {
		b := make([]byte, 750000)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return fmt.Sprintf("random/%d", i), base64.StdEncoding.EncodeToString(b)
	}
	ns := fmt.Sprintf("team-%02d", r.IntN(40))
	name := fmt.Sprintf("%s-%s-%05x", word(r), word(r), r.IntN(1<<20))
	meta := map[string]any{
		"name": name, "namespace": ns, "uid": uuid(r), "resourceVersion": fmt.Sprint(100000 + i),
		"creationTimestamp": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(1<<25)) * time.Second).Format(time.RFC3339),
		"labels":            map[string]string{"app.kubernetes.io/name": word(r), "app.kubernetes.io/part-of": word(r), "tier": word(r)},
		"annotations":       map[string]string{"deployment.kubernetes.io/revision": fmt.Sprint(r.IntN(30)), "owner": word(r) + "@example.com"},
	}
	if r.IntN(8) == 0 {
		b := make([]byte, 1024+r.IntN(3072))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		obj := map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": meta,
			"data": map[string]string{"tls.key": base64.StdEncoding.EncodeToString(b), "tls.crt": base64.StdEncoding.EncodeToString(b[:len(b)/2])}}
		return "secrets/" + ns + "/" + name, marshal(obj)
	}
	data := map[string]string{}
	fields := map[string]any{}
	for range 1 + r.IntN(4) {
		k := word(r) + ".yaml"
		var sb strings.Builder
		for n := 2048 + r.IntN(8192); sb.Len() < n; {
			fmt.Fprintf(&sb, "%s%s: %s-%d\n", strings.Repeat("  ", r.IntN(4)), word(r), word(r), r.IntN(10000))
		}
		data[k] = sb.String()
		fields["f:"+k] = map[string]any{}
	}
	meta["managedFields"] = []any{map[string]any{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
		"time": meta["creationTimestamp"], "fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:data": fields,
			"f:metadata": map[string]any{"f:labels": map[string]any{".": map[string]any{}, "f:app.kubernetes.io/name": map[string]any{}}}}}}
	obj := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
	return "configmaps/" + ns + "/" + name, marshal(obj)
}

func marshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func uuid(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), 0x8000|r.IntN(1<<14), r.Uint64()&(1<<48-1))
}

var words = strings.Fields(`alpha api apply archive audit backend batch billing blue bridge cache canary cart catalog
	checkout cluster config console controller cron dashboard data debug delivery deploy edge email engine event
	export feature feed frontend gateway green grpc health image index ingest internal inventory job kafka ledger
	limit log mail media metrics mesh monitor mysql nginx node notify oauth order payment pipeline policy postgres
	proxy queue rabbit rate redis region replica report router runner scheduler search secret service session
	shard shipping sidecar storage stream sync tenant timeout token tracing user vault web worker zone`)

func word(r *rand.Rand) string { return words[r.IntN(len(words))] }
