package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// preflighted is what preflight learnt, with the cluster untouched.
type preflighted struct {
	plan    *Plan
	plain   *snapshot.PlainFile
	members []discovery.Member
	live    Live
	// agents is the agent binary for each node.
	agents map[string]agentclient.Binary
}

// preflight checks everything that can be checked without a pod: the
// snapshot, its FILE.json, the members and their nodes, the versions and
// the agent binaries. Any failure leaves the cluster as it was.
func preflight(ctx context.Context, d Deps, cfg Config) (*preflighted, error) {
	plain, err := openSnapshot(cfg, "changed")
	if err != nil {
		return nil, err
	}
	pre := &preflighted{plain: plain}
	if err := pre.check(ctx, d, cfg); err != nil {
		plain.Close()
		return nil, err
	}
	return pre, nil
}

func (pre *preflighted) check(ctx context.Context, d Deps, cfg Config) error {
	snap, err := readSnapshot(cfg.File, pre.plain)
	if err != nil {
		return err
	}
	if pre.members, err = d.Members(ctx); err != nil {
		return err
	}
	if err := checkNodesReady(pre.members); err != nil {
		return err
	}
	pre.live = readLive(ctx, d.Reads, pre.members)
	if pre.agents, err = agentclient.ForNodes(ctx, d.Client, cfg.AgentDir, nodesOf(pre.members)); err != nil {
		return err
	}
	var nodes []string
	for _, m := range pre.members {
		nodes = append(nodes, m.Node)
	}
	dirs, warnings := staticPodDirs(ctx, d.StaticPodDir, nodes)
	enc, encWarnings := bundleEncryptionConfigs(ctx, d, pre.plain.Bundle, nodes)
	pre.plan, err = NewPlan(pre.members, snap, pre.live, Options{Time: cfg.Now(), Force: cfg.Force, NoBumpRevision: cfg.NoBumpRevision, StaticPodDirs: dirs, HealthyTimeout: cfg.HealthyTimeout,
		EncryptionConfigs: enc})
	if err == nil {
		pre.plan.Warnings = append(append(pre.plan.Warnings, warnings...), encWarnings...)
	}
	return err
}

// bundleEncryptionConfigs are, by node, the encryption configs a bundle
// holds, each to go where the node's kube-apiserver reads its config now
// (else where the bundle read it).
func bundleEncryptionConfigs(ctx context.Context, d Deps, b *snapshot.Bundle, nodes []string) (map[string]*EncryptionConfigPlan, []string) {
	if b == nil {
		return nil, nil
	}
	current := map[string]string{}
	var warnings []string
	if d.APIServers != nil {
		servers, err := d.APIServers(ctx)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("the API servers' encryption config paths could not be read (%v): the bundle's go where the bundle read them", err))
		}
		for _, s := range servers {
			current[s.Node] = s.EncryptionConfig
		}
	}
	out := map[string]*EncryptionConfigPlan{}
	for _, n := range nodes {
		src, data, ok := b.EncryptionConfig(n)
		if !ok {
			continue
		}
		p := src
		if c, known := current[n]; known && c != "" {
			p = c
		} else if known {
			warnings = append(warnings, fmt.Sprintf("node %s's kube-apiserver reads no encryption config now: the bundle's goes to %s, where it read one when backed up; add --encryption-provider-config=%s to its manifest, or the restored encrypted values stay unreadable", n, src, src))
		}
		sum := sha256.Sum256(data)
		out[n] = &EncryptionConfigPlan{Path: p, SHA256: hex.EncodeToString(sum[:]), Data: data}
	}
	return out, warnings
}

// openSnapshot verifies the file; with SkipHashCheck it also takes a
// member's database copied from a data dir (copy-db), which has no
// trailer. unchanged says what a refusal left as it was.
func openSnapshot(cfg Config, unchanged string) (*snapshot.PlainFile, error) {
	open := snapshot.Decrypt
	if cfg.SkipHashCheck {
		open = snapshot.DecryptAny
	}
	plain, err := open(cfg.File, cfg.Identities, "")
	if err == nil {
		return plain, nil
	}
	if raw, _ := snapshot.DecryptAny(cfg.File, cfg.Identities, ""); raw != nil {
		raw.Close()
		return nil, hint.Permanent(fmt.Errorf("the file has no sha256 trailer, so nothing was %s: it looks like a member's database copied from its data dir (copy-db), not a snapshot: %w", unchanged, err),
			"nothing vouches that it is whole or current; take a snapshot with `kubectl etcd backup` if any member runs, or restore this copy with --skip-hash-check")
	}
	return nil, hint.Permanent(fmt.Errorf("the snapshot does not verify, so nothing was %s: %w", unchanged, err),
		"pass an intact snapshot (kubectl etcd snapshot inspect FILE checks one); an encrypted one needs --identity")
}

// readSnapshot reads the revision from inside the file and FILE.json
// when it is there.
func readSnapshot(file string, plain *snapshot.PlainFile) (Snapshot, error) {
	rep, err := snapshot.Analyze(plain)
	if err != nil {
		return Snapshot{}, hint.Permanent(fmt.Errorf("the snapshot's database is damaged, so nothing was changed: %w", err),
			"pass an intact snapshot (kubectl etcd snapshot inspect FILE checks one)")
	}
	s := Snapshot{Path: file, Revision: rep.Revision, Keys: rep.ServedKeys, Size: plain.Size, SHA256: plain.FileSHA256, Raw: plain.Raw}
	metaPath := snapshot.MetadataPath(file)
	if _, err := os.Stat(metaPath); errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	m, err := snapshot.ReadMetadata(metaPath)
	if err != nil {
		return Snapshot{}, err
	}
	if m.SHA256 != "" && m.SHA256 != plain.FileSHA256 {
		return Snapshot{}, fmt.Errorf("%s is for a file with sha256 %s, but %s has %s: pass the FILE.json that came with this snapshot, or remove it",
			metaPath, m.SHA256, filepath.Base(file), plain.FileSHA256)
	}
	s.StorageVersion = m.StorageVersion
	s.Meta = &Metadata{ClusterID: m.ClusterID, Revision: m.Revision, EtcdVersion: m.EtcdVersion}
	for _, mm := range m.Members {
		s.Meta.MemberNames = append(s.Meta.MemberNames, mm.Name)
		s.Meta.Members = append(s.Meta.Members, MetadataMember{Name: mm.Name, Node: mm.Node, PeerURLs: mm.PeerURLs})
	}
	return s, nil
}

func checkNodesReady(ms []discovery.Member) error {
	var bad []string
	for _, m := range ms {
		if m.NodeReady != nil && !*m.NodeReady {
			bad = append(bad, m.Node)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return hint.Permanent(fmt.Errorf("node(s) %v are not Ready: the restore needs a pod on every control-plane node, so nothing was changed", bad),
		"bring them back (kubectl describe node %s), or remove their members first", bad[0])
}

// readLive reads the bump's inputs. A cluster that answers nothing (no
// quorum, which is often why one restores) leaves them unknown.
func readLive(ctx context.Context, d etcd.Transport, ms []discovery.Member) Live {
	var l Live
	if d == nil {
		return l
	}
	v, err := cluster.Status(ctx, d, ms)
	if v == nil || err != nil && !errors.Is(err, cluster.ErrSomeFailed) {
		return l
	}
	l.ClusterID = v.ClusterID
	for _, m := range v.Members {
		l.Revision = max(l.Revision, m.Revision)
		l.MaxRaftIndex = max(l.MaxRaftIndex, int64(m.RaftIndex))
	}
	return l
}
