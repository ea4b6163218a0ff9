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
// that runs the replace's agent on the node itself, and the agents
// beside it: for a node whose kubelet cannot start a pod (kubeadm's local
// mode with this member down), an operator copies dir there and runs it.
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
	sj, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	var archs []string
	for _, a := range agents {
		sums[a.Arch] = a.SHA256
		archs = append(archs, "linux/"+a.Arch)
	}
	var b bytes.Buffer
	err = replaceScriptTemplate().Execute(&b, map[string]any{
		"ID": spec.ID, "Node": spec.Node, "Member": spec.Member, "OldID": spec.OldID, "Journal": spec.JournalDir,
		"Amd64": sums["amd64"], "Arm64": sums["arm64"], "BinDir": agentclient.BinDir, "Spec": string(sj),
		"Steps": steps, "Agent": agentclient.Name, "Script": ReplaceScript(spec.Node),
	})
	if err != nil {
		return nil, err
	}
	if err := agentclient.CopyAgents(dir, agents); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ReplaceScript(spec.Node)), b.Bytes(), 0o700); err != nil {
		return nil, err
	}
	return archs, nil
}

var replaceScriptTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("replace").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(replaceScriptText))
})

// replaceScriptText is POSIX sh with coreutils. It changes nothing until
// the agent checks out; the agent then checks the node against the plan.
const replaceScriptText = `#!/bin/sh
# kubectl etcd member replace {{.ID}}: node {{.Node}}, member {{.Member}} ({{.OldID}}).
# Written by ` + "`kubectl etcd member replace --script-dir`" + `.
#
# Run as root on node {{.Node}}:
#   sh {{.Script}}
#
# Steps on this node, by the agent in a static pod that runs etcd's own image:
{{- range $i, $s := .Steps}}
#   {{inc $i}}. {{$s}}
{{- end}}
set -eu

ID='{{.ID}}'
JOURNAL='{{.Journal}}'
AGENT_SHA256_amd64='{{.Amd64}}'
AGENT_SHA256_arm64='{{.Arm64}}'

die() { echo "{{.Script}}: $*" >&2; exit 1; }
sum() { sha256sum "$1" | cut -d' ' -f1; }

here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || die "run me as root: I stop and start etcd's static pod"
case "$(uname -m)" in
  x86_64|amd64) arch=amd64; want=$AGENT_SHA256_amd64 ;;
  aarch64|arm64) arch=arm64; want=$AGENT_SHA256_arm64 ;;
  *) die "this node is $(uname -m); the agent is built for amd64 and arm64 only" ;;
esac
[ -n "$want" ] || die "no agent for linux/$arch in $here: rerun kubectl etcd member replace --script-dir with kubectl-etcd-agent-linux-$arch in --agent-dir"
agent=$here/{{.Agent}}-linux-$arch
[ "$(sum "$agent")" = "$want" ] || die "$agent does not have the sha256 $want: copy the script dir again"
bin={{.BinDir}}/$want

if [ -e "$JOURNAL/journal.json" ]; then
  echo "replace $ID has already started on this node; resuming it if it stopped, and following it (Ctrl-C is safe):"
  "$bin" replace run --root / --id "$ID" --detach --handover-timeout 10m >/dev/null 2>&1 || true
  exec "$bin" replace wait --root / --id "$ID"
fi
umask 077
mkdir -p {{.BinDir}}
if [ ! -x "$bin" ] || [ "$(sum "$bin")" != "$want" ]; then
  cp "$agent" "$bin.part" && chmod 0755 "$bin.part" && mv -f "$bin.part" "$bin"
fi
# A kubelet without its API server can take a while to start a static pod.
# A replace of this member left unfinished here is resumed instead.
echo "the agent runs the replace in a static pod; following it (Ctrl-C is safe: the node carries on):"
exec "$bin" replace start --root / --handover-timeout 10m --follow --spec - <<'SPEC'
{{.Spec}}
SPEC
`
