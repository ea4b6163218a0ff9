package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// ScriptSnapshot is the snapshot's name in a script dir.
const ScriptSnapshot = "snapshot.db"

// scriptBarrierTimeout bounds the first node's wait for the others.
const scriptBarrierTimeout = 10 * time.Minute

// scriptDiscoverTimeout bounds the attempt to read the pods: without
// quorum the API server hangs rather than refuses.
const scriptDiscoverTimeout = 20 * time.Second

// Scripts writes, instead of restoring, one self-contained shell script
// per control-plane node into cfg.ScriptDir, with the node agents and the
// snapshot beside them: for when the API server cannot act (etcd's quorum
// is lost), an operator copies the dir to every node and runs its script
// there. Each script checks the sha256s, then hands the same steps and the
// same journal to the agent, which restores with the node's own etcd image
// in a static pod: the kubelet runs those without the API server.
//
// The plan comes from the etcd pods when the API answers, and otherwise
// from the FILE.json that backup wrote: the member names, nodes and peer
// URLs; each node's agent reads its data dir and image from its manifest.
func Scripts(ctx context.Context, d Deps, cfg Config) (*Plan, error) {
	cfg = cfg.withDefaults()
	if err := emptyDir(cfg.ScriptDir); err != nil {
		return nil, err
	}
	plain, err := openSnapshot(cfg, "written")
	if err != nil {
		return nil, err
	}
	defer plain.Close()
	snap, err := readSnapshot(cfg.File, plain)
	if err != nil {
		return nil, err
	}
	plainSHA, err := agentapi.ReaderSHA256(io.NewSectionReader(plain.File, 0, plain.Size))
	if err != nil {
		return nil, err
	}
	p, err := scriptPlan(ctx, d, cfg, snap)
	if err != nil {
		return nil, err
	}
	if b := plain.Bundle; b != nil && len(b.Index.EncryptionKeys) > 0 {
		// A script dir is on this machine's disk: the keys do not go there.
		p.Warnings = append(p.Warnings, "the scripts do not put the bundle's encryption config back (its keys would sit in the script dir): lay it out with `kubectl etcd bundle extract FILE --node NODE --to DIR` and copy encryption/ where each kube-apiserver reads it before running the scripts")
	}
	agents, err := agentclient.ForScript(cfg.AgentDir)
	if err != nil {
		return nil, err
	}
	w := scriptWriter{dir: cfg.ScriptDir, plan: p, agents: agents, plainSHA: plainSHA, encrypted: plain.Encrypted}
	for i := range p.Members {
		p.Members[i].Steps = w.scriptSteps(p.Members[i])
	}
	if err := RenderPlan(cfg.Out, p); err != nil {
		return nil, err
	}
	if cfg.DryRun {
		cfg.notef("--dry-run: nothing was written")
		return p, nil
	}
	if err := w.write(plain); err != nil {
		return nil, err
	}
	w.instructions(cfg.Out)
	return p, nil
}

// scriptPlan plans from the pods when the API answers, else from FILE.json.
func scriptPlan(ctx context.Context, d Deps, cfg Config, snap Snapshot) (*Plan, error) {
	dctx, cancel := context.WithTimeout(ctx, scriptDiscoverTimeout)
	ms, derr := d.Members(dctx)
	cancel()
	opts := Options{Time: cfg.Now(), Force: cfg.Force, NoBumpRevision: cfg.NoBumpRevision, HealthyTimeout: cfg.HealthyTimeout}
	if derr == nil && len(ms) > 0 {
		live := readLive(ctx, d.Reads, ms)
		var nodes []string
		for _, m := range ms {
			nodes = append(nodes, m.Node)
		}
		dirs, warnings := staticPodDirs(ctx, d.StaticPodDir, nodes)
		opts.StaticPodDirs = dirs
		p, err := NewPlan(ms, snap, live, opts)
		if err != nil {
			return nil, err
		}
		p.Warnings = append(p.Warnings, warnings...)
		return p, nil
	}
	if snap.Meta == nil || len(snap.Meta.Members) == 0 {
		return nil, hint.Permanent(fmt.Errorf("the etcd pods cannot be read (%v), and %s has no FILE.json naming the members", errOrNone(derr), filepath.Base(cfg.File)),
			"script mode plans from the pods, or without the API from the FILE.json that `kubectl etcd backup` writes beside the snapshot: put it there")
	}
	for _, mm := range snap.Meta.Members {
		ms = append(ms, discovery.Member{Name: mm.Name, Node: mm.Node, InitialAdvertisePeerURLs: mm.PeerURLs, Version: snap.Meta.EtcdVersion})
	}
	opts.FromMetadata = true
	p, err := NewPlan(ms, snap, Live{}, opts)
	if err != nil {
		return nil, err
	}
	p.Warnings = append(p.Warnings, fmt.Sprintf("the etcd pods cannot be read (%v): planned from FILE.json's members; each node's agent reads its data dir and image from its etcd manifest, and refuses if its member name differs", errOrNone(derr)))
	return p, nil
}

func errOrNone(err error) string {
	if err == nil {
		return "none found"
	}
	return firstLine(err)
}

// scriptSteps are a node's steps in script mode: the script's own, then
// the agent's, which restore the data too.
func (w scriptWriter) scriptSteps(m MemberPlan) []string {
	spec := w.spec(m)
	return append([]string{
		"check the snapshot's and the agent's sha256; refuse if this node's etcd manifest names another member",
		fmt.Sprintf("stage the agent under %s and the snapshot in %s", agentclient.BinDir, m.JournalDir),
		fmt.Sprintf("start the node's agent as the static pod %s, which runs etcd's own image", path.Join(m.StaticPodDir, agentapi.AgentPodFile(w.plan.ID, "run"))),
	}, agentSteps(&spec)...)
}

// emptyDir makes dir, or accepts it empty: scripts of two plans must not
// mix.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("--script-dir %s is not empty: give an empty or new dir, so that scripts of two plans never mix", dir)
	}
	return nil
}

type scriptWriter struct {
	dir       string
	plan      *Plan
	agents    []agentclient.ArchBinary
	plainSHA  string
	encrypted bool
}

func (w scriptWriter) write(plain *snapshot.PlainFile) error {
	if err := agentclient.CopyAgents(w.dir, w.agents); err != nil {
		return err
	}
	if !w.encrypted {
		// The file as it is: the plain snapshot already is on this disk.
		if err := copyFrom(io.NewSectionReader(plain.File, 0, plain.Size), filepath.Join(w.dir, ScriptSnapshot), 0o600); err != nil {
			return err
		}
	}
	for _, m := range w.plan.Members {
		b, err := w.script(m)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(w.dir, scriptName(m)), b, 0o700); err != nil {
			return err
		}
	}
	return nil
}

func scriptName(m MemberPlan) string { return "restore-" + m.Node + ".sh" }

func (w scriptWriter) instructions(out io.Writer) {
	fmt.Fprintf(out, "\nWrote %s:\n", w.dir)
	var names []string
	for _, m := range w.plan.Members {
		names = append(names, scriptName(m))
	}
	sort.Strings(names)
	fmt.Fprintf(out, "  %s, the agents for %s", strings.Join(names, ", "), w.archs())
	if !w.encrypted {
		fmt.Fprintf(out, ", and %s (sha256 %s)", ScriptSnapshot, w.plainSHA)
	}
	fmt.Fprintf(out, "\n\nNext:\n  1. copy %s to every control-plane node (scp -r, or any way you have)", w.dir)
	if w.encrypted {
		fmt.Fprintf(out, ", with the decrypted snapshot: the dir holds no plaintext, so decrypt it on the node (age -d -i KEY -o snapshot.db FILE) and pass SNAPSHOT=/path/to/snapshot.db to the script")
	}
	fmt.Fprintf(out, "\n  2. on each node, as root and at about the same time (the nodes wait for each other before the swap):\n")
	for _, m := range w.plan.Members {
		fmt.Fprintf(out, "       %s:  sh %s/%s\n", m.Node, filepath.Base(w.dir), scriptName(m))
	}
	fmt.Fprintf(out, "     Each script follows its node's steps and exits 0 once its member serves the restored data.\n")
	fmt.Fprintf(out, "  3. restart the kubelet on every node, workers too, so that its informers drop what they held before (systemctl restart kubelet)\n")
	fmt.Fprintf(out, "  4. `kubectl etcd restore --status` reads the journals, and `kubectl etcd restore --rollback --id %s` undoes the restore\n", w.plan.ID)
	fmt.Fprintf(out, "  5. a node whose script reports that it holds at the barrier (its peers no longer answer) takes the decision another node\n"+
		"     recorded in %s: on it, as root, with that file's decision and that node's name:\n"+
		"       %s/<agent sha256> restore run --id %s --decision commit|abort --from 'barrier.json of node NODE' --detach --root /\n"+
		"     (`kubectl etcd restore --resume --id %s` does this for you once the API answers)\n",
		path.Join(w.plan.Members[0].JournalDir, agentapi.BarrierFile), agentclient.BinDir, w.plan.ID, w.plan.ID)
}

func (w scriptWriter) archs() string {
	var a []string
	for _, x := range w.agents {
		a = append(a, "linux/"+x.Arch)
	}
	return strings.Join(a, " and ")
}

// spec is the node's part of a scripted restore, as its agent reads it.
func (w scriptWriter) spec(m MemberPlan) agentapi.RestoreSpec {
	spec := w.plan.AgentSpec(m)
	spec.SnapshotRestore = &agentapi.SnapshotRestore{Snapshot: m.StagedSnapshot, SHA256: w.plainSHA, Flags: m.RestoreFlags}
	if spec.Barrier != nil {
		// Operators start the scripts by hand, and kubelets without an
		// API server start static pods slowly.
		spec.Barrier.Timeout = agentapi.Duration(scriptBarrierTimeout)
	}
	return spec
}

func (w scriptWriter) script(m MemberPlan) ([]byte, error) {
	spec := w.spec(m)
	sj, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	for _, a := range w.agents {
		sums[a.Arch] = a.SHA256
	}
	var b bytes.Buffer
	err = scriptTemplate().Execute(&b, map[string]any{
		"ID": w.plan.ID, "Node": m.Node, "Member": m.Name, "Snapshot": filepath.Base(w.plan.Snapshot.Path),
		"Revision": w.plan.Snapshot.Revision, "SHA": w.plainSHA, "Encrypted": w.encrypted,
		"Amd64": sums["amd64"], "Arm64": sums["arm64"], "Journal": m.JournalDir, "Staged": m.StagedSnapshot,
		"BinDir": agentclient.BinDir, "Spec": string(sj), "Steps": m.Steps, "Agent": agentclient.Name,
	})
	return b.Bytes(), err
}

// copyFrom writes r to dst, synced, so that a copy taken at once is whole.
func copyFrom(r io.Reader, dst string, mode os.FileMode) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// scriptTemplate is POSIX sh with coreutils: what a control-plane node
// has. It changes nothing until the files check out; then the agent
// checks the node against the plan before it writes its journal. It is
// parsed on first use, not at every start of the plugin.
var scriptTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("script").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(scriptText))
})

const scriptText = `#!/bin/sh
# kubectl etcd restore {{.ID}}: node {{.Node}}, member {{.Member}}.
# Written by ` + "`kubectl etcd restore --script-dir`" + ` from {{.Snapshot}} (revision {{.Revision}}).
#
# Run as root on node {{.Node}}, at about the same time as the other nodes' scripts:
#   sh restore-{{.Node}}.sh
# The snapshot is read from $SNAPSHOT, else from {{if .Encrypted}}(none: decrypt it first){{else}}snapshot.db beside this script{{end}}.
#
# Steps on this node:
{{- range $i, $s := .Steps}}
#   {{inc $i}}. {{$s}}
{{- end}}
set -eu

ID='{{.ID}}'
JOURNAL='{{.Journal}}'
STAGED='{{.Staged}}'
SNAPSHOT_SHA256='{{.SHA}}'
AGENT_SHA256_amd64='{{.Amd64}}'
AGENT_SHA256_arm64='{{.Arm64}}'

die() { echo "restore-{{.Node}}.sh: $*" >&2; exit 1; }
sum() { sha256sum "$1" | cut -d' ' -f1; }

here=$(cd "$(dirname "$0")" && pwd)
SNAPSHOT=${SNAPSHOT:-{{if .Encrypted}}{{else}}$here/snapshot.db{{end}}}
[ "$(id -u)" = 0 ] || die "run me as root: I stop and start the control plane's static pods"
case "$(uname -m)" in
  x86_64|amd64) arch=amd64; want=$AGENT_SHA256_amd64 ;;
  aarch64|arm64) arch=arm64; want=$AGENT_SHA256_arm64 ;;
  *) die "this node is $(uname -m); the agent is built for amd64 and arm64 only" ;;
esac
[ -n "$want" ] || die "no agent for linux/$arch in $here: rerun kubectl etcd restore --script-dir with kubectl-etcd-agent-linux-$arch in --agent-dir"
agent=$here/{{.Agent}}-linux-$arch
[ "$(sum "$agent")" = "$want" ] || die "$agent does not have the sha256 $want: copy the script dir again"
bin={{.BinDir}}/$want

if [ -e "$JOURNAL/journal.json" ]; then
  echo "restore $ID has already started on this node; following it (Ctrl-C is safe):"
  exec "$bin" restore wait --root / --id "$ID"
fi
[ -n "$SNAPSHOT" ] && [ -f "$SNAPSHOT" ] || die "no snapshot at '$SNAPSHOT': pass SNAPSHOT=/path/to/the/plain/snapshot.db"
echo "checking the snapshot's sha256..."
[ "$(sum "$SNAPSHOT")" = "$SNAPSHOT_SHA256" ] || die "$SNAPSHOT does not have the sha256 $SNAPSHOT_SHA256: it is not the snapshot that was planned"

# The staged copy is the snapshot's plaintext: 0600 in 0700 dirs from its
# first byte, and removed by the agent once the data is restored from it.
umask 077
mkdir -p {{.BinDir}} "$JOURNAL"
chmod 0700 "$(dirname "$JOURNAL")" "$JOURNAL"
if [ ! -x "$bin" ] || [ "$(sum "$bin")" != "$want" ]; then
  cp "$agent" "$bin.part" && chmod 0755 "$bin.part" && mv -f "$bin.part" "$bin"
fi
if [ ! -f "$STAGED" ] || [ "$(sum "$STAGED")" != "$SNAPSHOT_SHA256" ]; then
  cp "$SNAPSHOT" "$STAGED.part" && chmod 0600 "$STAGED.part" && mv -f "$STAGED.part" "$STAGED"
fi

# Without quorum, a kubelet whose API server hangs can take minutes to
# start a static pod.
"$bin" restore start --root / --handover-timeout 10m --spec - <<'SPEC'
{{.Spec}}
SPEC
echo "the agent runs the restore in a static pod; following it (Ctrl-C is safe: the node carries on):"
exec "$bin" restore wait --root / --id "$ID"
`
