package membership

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"text/template"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
)

// ReplaceScript is the file name of a replace's node script.
func ReplaceScript(node string) string { return "replace-" + node + ".sh" }

// writeReplaceScript writes, into dir (new or empty), the node script
// that runs the replace's agent on the node itself, and the agents beside
// it: for a node whose kubelet cannot start a pod (kubeadm's local mode
// with this member down), an operator copies dir there and runs it.
func writeReplaceScript(dir, agentDir string, spec agentapi.ReplaceSpec, steps []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
		if err == nil {
			err = fmt.Errorf("--script-dir %s is not empty: give an empty or new dir, so that scripts of two plans never mix", dir)
		}
		return nil, err
	}
	agents, err := agentclient.ForScript(agentDir)
	if err != nil {
		return nil, err
	}
	if err := agentclient.CopyAgents(dir, agents); err != nil {
		return nil, err
	}
	s := nodeScript{File: ReplaceScript(spec.Node), Command: "kubectl etcd member replace --script-dir",
		Title: fmt.Sprintf("member replace %s: node %s, member %s (%s)", spec.ID, spec.Node, spec.Member, spec.OldID),
		Node:  spec.Node, Op: agentapi.ReplaceOperation, ID: spec.ID, Journal: spec.JournalDir, Steps: steps, Spec: spec}
	if err := s.write(dir, agents); err != nil {
		return nil, err
	}
	return archs(agents), nil
}

func archs(agents []agentclient.ArchBinary) []string {
	var out []string
	for _, a := range agents {
		out = append(out, "linux/"+a.Arch)
	}
	return out
}

// nodeScript is a script that an operator runs as root on a node: it
// checks the agent beside it against its sha256, installs it, and runs
// the agent: `<Op> start --follow` with Spec, resuming a journal already
// there, or, without a Spec, `<Op> <Run>`.
type nodeScript struct {
	File, Title, Node string
	// Command is the plugin's command that wrote it.
	Command         string
	Op, ID, Journal string
	Steps           []string
	Spec            any
	// Run is the agent's command when there is no Spec.
	Run string
}

// write writes the script into dir, for the agents already there.
func (s nodeScript) write(dir string, agents []agentclient.ArchBinary) error {
	sums := map[string]string{}
	for _, a := range agents {
		sums[a.Arch] = a.SHA256
	}
	spec := ""
	if s.Spec != nil {
		b, err := json.MarshalIndent(s.Spec, "", "  ")
		if err != nil {
			return err
		}
		spec = string(b)
	}
	var b bytes.Buffer
	err := nodeScriptTemplate().Execute(&b, map[string]any{
		"S": s, "Amd64": sums["amd64"], "Arm64": sums["arm64"], "BinDir": agentclient.BinDir, "Agent": agentclient.Name, "Spec": spec,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, s.File), b.Bytes(), 0o700)
}

var nodeScriptTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("node").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(nodeScriptText))
})

// nodeScriptText is POSIX sh with coreutils. It changes nothing until
// the agent checks out; the agent then checks the node against the plan.
const nodeScriptText = `#!/bin/sh
# kubectl etcd {{.S.Title}}.
# Written by ` + "`{{.S.Command}}`" + `.
#
# Run as root on {{if .S.Node}}node {{.S.Node}}{{else}}the node{{end}}:
#   sh {{.S.File}}
{{- if .S.Steps}}
#
# Steps on this node, by the agent in a static pod that runs etcd's own image:
{{- range $i, $s := .S.Steps}}
#   {{inc $i}}. {{$s}}
{{- end}}
{{- end}}
set -eu

AGENT_SHA256_amd64='{{.Amd64}}'
AGENT_SHA256_arm64='{{.Arm64}}'

die() { echo "{{.S.File}}: $*" >&2; exit 1; }
sum() { sha256sum "$1" | cut -d' ' -f1; }

here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || die "run me as root: I read etcd's data{{if .Spec}} and stop and start etcd's static pod{{end}}"
case "$(uname -m)" in
  x86_64|amd64) arch=amd64; want=$AGENT_SHA256_amd64 ;;
  aarch64|arm64) arch=arm64; want=$AGENT_SHA256_arm64 ;;
  *) die "this node is $(uname -m); the agent is built for amd64 and arm64 only" ;;
esac
[ -n "$want" ] || die "no agent for linux/$arch in $here: rerun {{.S.Command}} with kubectl-etcd-agent-linux-$arch in --agent-dir"
agent=$here/{{.Agent}}-linux-$arch
[ "$(sum "$agent")" = "$want" ] || die "$agent does not have the sha256 $want: copy the script dir again"
bin={{.BinDir}}/$want
{{- if .Spec}}

ID='{{.S.ID}}'
JOURNAL='{{.S.Journal}}'
if [ -e "$JOURNAL/journal.json" ]; then
  echo "{{.S.Op}} $ID has already started on this node; resuming it if it stopped, and following it (Ctrl-C is safe):" >&2
  "$bin" {{.S.Op}} run --root / --id "$ID" --detach --handover-timeout 10m >/dev/null 2>&1 || true
  exec "$bin" {{.S.Op}} wait --root / --id "$ID"
fi
{{- end}}
umask 077
mkdir -p {{.BinDir}}
if [ ! -x "$bin" ] || [ "$(sum "$bin")" != "$want" ]; then
  cp "$agent" "$bin.part" && chmod 0755 "$bin.part" && mv -f "$bin.part" "$bin"
fi
{{- if .Spec}}
# A kubelet without its API server can take a while to start a static pod.
# A {{.S.Op}} of this member left unfinished here is resumed instead.
echo "the agent runs the {{.S.Op}} in a static pod; following it (Ctrl-C is safe: the node carries on):" >&2
exec "$bin" {{.S.Op}} start --root / --handover-timeout 10m --follow --spec - <<'SPEC'
{{.Spec}}
SPEC
{{- else}}
exec "$bin" {{.S.Run}}
{{- end}}
`
