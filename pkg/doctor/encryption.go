package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/encryptionconfig"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodefacts"
)

// Encryption at rest, as the API servers do it: each resource's values
// are written by the first provider of its entry in the file that
// --encryption-provider-config names, prefixed k8s:enc:<provider>:v1:<key>:
// (kms: k8s:enc:kms:v1|v2:<name>:), and read by any provider there that
// holds the key they name. A value written with a key that a node's
// config lacks cannot be read by that node's API server; a snapshot's
// Secrets cannot be read without the keys.

// EncryptionFacts is what the API servers' configs hold and how the
// values are stored.
type EncryptionFacts struct {
	Servers    []discovery.APIServer
	ServersErr error
	// Configs is each node's config, by node; ConfigErrs why one could
	// not be read.
	Configs    map[string]*encryptionconfig.Config
	ConfigErrs map[string]error
	// Stored counts, per resource, its values by how they are stored:
	// "aescbc:key1", "kms:v2:name", or "" for plain text. PlainExamples
	// names a few plain ones.
	Stored        map[string]map[string]int
	PlainExamples map[string][]string
	StoredErr     error
}

// storedAs is how a value is stored: "aescbc:key1", "kms:v2:name", or ""
// for plain text.
func storedAs(v []byte) string {
	rest, ok := bytes.CutPrefix(v, []byte("k8s:enc:"))
	if !ok {
		return ""
	}
	parts := strings.SplitN(string(rest[:min(len(rest), 300)]), ":", 4)
	if len(parts) < 3 {
		return "unknown"
	}
	if parts[0] == "kms" {
		return "kms:" + parts[1] + ":" + parts[2]
	}
	return parts[0] + ":" + parts[2]
}

// readStored counts the values of each resource by how they are stored,
// walking them a page at a time; only their prefixes are kept.
func readStored(ctx context.Context, p keyspace.Pager, resources []string, e *EncryptionFacts) error {
	e.Stored, e.PlainExamples = map[string]map[string]int{}, map[string][]string{}
	live := &keyspace.Live{Client: p, Serializable: true}
	for _, res := range resources {
		prefix := "/registry/" + res + "/"
		counts := map[string]int{}
		_, err := live.Walk(ctx, keyspace.Query{Key: prefix, Prefix: true, Detail: keyspace.Values}, func(pg keyspace.Page) error {
			for _, kv := range pg.Entries {
				how := storedAs(kv.Value)
				counts[how]++
				if how == "" && len(e.PlainExamples[res]) < 3 {
					e.PlainExamples[res] = append(e.PlainExamples[res], strings.TrimPrefix(string(kv.Key), prefix))
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", prefix, err)
		}
		e.Stored[res] = counts
	}
	return nil
}

// resourcesToRead are secrets and every core resource a config names.
func resourcesToRead(cfgs map[string]*encryptionconfig.Config) []string {
	set := map[string]bool{"secrets": true}
	for _, c := range cfgs {
		for _, e := range c.Resources {
			for _, r := range e.Resources {
				if r != "" && !strings.Contains(r, ".") && r != "*" {
					set[r] = true
				}
			}
		}
	}
	var out []string
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// listAPIServers lists the API servers, whose encryption configs
// readNodes then reads.
func listAPIServers(ctx context.Context, src Sources) *EncryptionFacts {
	e := &EncryptionFacts{Configs: map[string]*encryptionconfig.Config{}, ConfigErrs: map[string]error{}}
	if src.APIServers == nil {
		e.ServersErr = errors.New("the API servers' pods cannot be read here")
		return e
	}
	e.Servers, e.ServersErr = src.APIServers(ctx)
	return e
}

// readEncryptionStored counts how the values of the resources the
// configs name are stored.
func readEncryptionStored(ctx context.Context, clients []Client, e *EncryptionFacts) {
	if e.ServersErr != nil {
		return
	}
	for _, c := range clients {
		if p, ok := c.(keyspace.Pager); ok {
			e.StoredErr = readStored(ctx, p, resourcesToRead(e.Configs), e)
			return
		}
	}
	e.StoredErr = errors.New("no member answered")
}

// parseEncryptionConfig parses the encryption config at path from a
// node's report, and clears and drops its bytes: the keys, read to be
// hashed, go at once.
func parseEncryptionConfig(path string, rep *nodefacts.NodeReport, err error) (*encryptionconfig.Config, error) {
	if err == nil {
		err = rep.FileErrs[path]
	}
	if err != nil {
		return nil, err
	}
	c, err := encryptionconfig.Parse(rep.Files[path])
	clear(rep.Files[path])
	delete(rep.Files, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// checkEncryption: every key the stored values name is in every API
// server's config, with the same secret; what a config encrypts is not
// stored in plain text; without encryption at rest, Secrets are plain
// text in every snapshot.
func checkEncryption(fs *Facts) []Result {
	e := fs.Encryption
	switch {
	case e == nil:
		return []Result{notChecked("", errors.New("not read"))}
	case e.ServersErr != nil:
		return []Result{notChecked("", e.ServersErr)}
	case e.StoredErr != nil:
		return []Result{notChecked("", e.StoredErr)}
	}
	var f findings
	nodes := make([]string, 0, len(e.Servers))
	without := []string{}
	for _, s := range e.Servers {
		nodes = append(nodes, s.Node)
		if s.EncryptionConfig == "" {
			without = append(without, s.Node)
		}
	}
	for _, n := range nodes {
		if err := e.ConfigErrs[n]; err != nil {
			f.add(NotChecked, fmt.Sprintf("node %s's encryption config could not be read (%s)", n, hint.OneLine(err.Error())), "")
		}
	}
	if len(without) == len(nodes) {
		plain := e.Stored["secrets"][""]
		if plain == 0 {
			return []Result{ok("", "no encryption at rest, and no Secret is stored")}
		}
		return []Result{res("", Warn, "turn on encryption at rest (kube-apiserver --encryption-provider-config; https://kubernetes.io/docs/tasks/administer-cluster/encrypt-data/), then rewrite the Secrets",
			"no API server encrypts at rest: %d Secrets are plain text in etcd, and in every snapshot of it", plain)}
	}
	if len(without) > 0 {
		f.add(Fail, fmt.Sprintf("the API servers on %s have no --encryption-provider-config while the others encrypt: they cannot read the encrypted values", strings.Join(without, ",")),
			"give every API server the same encryption config")
	}
	var summary []string
	for _, res := range sortedKeys(e.Stored) {
		counts := e.Stored[res]
		var parts []string
		for _, how := range sortedKeys(counts) {
			n := counts[how]
			if how == "" {
				parts = append(parts, fmt.Sprintf("%d plain", n))
				continue
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, how))
			var hashes []string
			for _, node := range nodes {
				c := e.Configs[node]
				if c == nil {
					continue
				}
				entry := c.EntryFor(res)
				k, held := encryptionconfig.Key{}, false
				if entry != nil {
					k, held = entry.Holds(how)
				}
				if !held {
					f.add(Fail, fmt.Sprintf("%d %s are stored with %s, which node %s's encryption config lacks: its API server cannot read them", n, res, how, node),
						"put the key back into that node's encryption config (kept after a rotation until every value is rewritten)")
				} else if k.Hash != "" && !slices.Contains(hashes, k.Hash) {
					hashes = append(hashes, k.Hash)
				}
			}
			if len(hashes) > 1 {
				f.add(Fail, fmt.Sprintf("key %s differs between the nodes' encryption configs: a value one API server writes, another cannot read", how),
					"give every API server the same encryption config")
			}
		}
		summary = append(summary, res+": "+strings.Join(parts, ", "))
		if plain := counts[""]; plain > 0 {
			for _, node := range nodes {
				if c := e.Configs[node]; c != nil && c.EntryFor(res).Encrypts() {
					f.add(Warn, fmt.Sprintf("%d %s are still stored in plain text (%s ...), though the config encrypts them", plain, res, strings.Join(e.PlainExamples[res], ", ")),
						fmt.Sprintf("rewrite them: kubectl get %s -A -o json | kubectl replace -f -", res))
					break
				}
			}
		}
	}
	stored := "values stored as " + strings.Join(summary, "; ")
	if f.worst == "" || f.worst == OK {
		return []Result{ok("", "%s; every key they use is in every node's encryption config", stored)}
	}
	return []Result{res("", f.worst, strings.Join(f.fixes, "; "), "%s (%s)", strings.Join(f.what, "; "), stored)}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
