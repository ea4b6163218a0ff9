// Package agentclient is the workstation's side of the node agent
// (kubectl-etcd-agent, pkg/agent): it finds the agent built for each
// node's architecture, installs it on the node under its sha256 through a
// node pod, and runs it there. Restore drives the agents with it; member
// replace and disaster recovery will. What the two sides exchange is
// pkg/agentapi.
package agentclient

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// Name is the agent binary's base name; a release carries one per
// architecture, named Name-linux-<arch>.
const Name = "kubectl-etcd-agent"

// BinDir is where agents are kept on a node, each under its sha256, so
// that a running agent's file is never overwritten.
const BinDir = "/var/lib/kubectl-etcd/bin"

// Binary is an agent on the workstation: its file, and the sha256 it is
// kept under on a node.
type Binary struct {
	Path   string
	SHA256 string
	// Exe is where a node pod runs it; empty is its NodePath under the
	// pod's nodepod.HostPrefix (see Install and Stage).
	Exe string
}

// NodePath is where the agent lives on the node.
func (a Binary) NodePath() string { return path.Join(BinDir, a.SHA256) }

func (a Binary) exe() string {
	if a.Exe != "" {
		return a.Exe
	}
	return nodepod.HostPrefix + a.NodePath()
}

// Stage makes the agent runnable in a pod that only reads the node (a
// nodepod.ProfileFiles pod with BinDir mounted and a Scratch dir): the
// copy installed on the node when it is there with the right sha256,
// else one uploaded to the pod's scratch dir, which goes with the pod.
// Nothing on the node changes.
func Stage(ctx context.Context, p *nodepod.Pod, a Binary) (Binary, error) {
	var out bytes.Buffer
	installed := nodepod.HostPrefix + a.NodePath()
	if err := p.Exec(ctx, []string{"sh", "-c", `sha256sum "$1" 2>/dev/null || true`, "check", installed}, nil, &out, io.Discard); err != nil {
		return a, fmt.Errorf("check for the agent: %w", err)
	}
	if got, _, _ := strings.Cut(strings.TrimSpace(out.String()), " "); got == a.SHA256 {
		a.Exe = installed
		return a, nil
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return a, err
	}
	defer f.Close()
	dst := path.Join(nodepod.ScratchDir, a.SHA256)
	if _, err := p.UploadExecutable(ctx, f, dst); err != nil {
		return a, err
	}
	a.Exe = dst
	return a, nil
}

// stageRun receives the agent on standard input into $1 (in a pod's
// scratch dir), checks it against the sha256 $2 before anything runs it,
// makes it runnable, and runs it with the arguments after those two. A
// copy an earlier attempt left (0500) is replaced.
const stageRun = `umask 077
rm -f "$1"
cat > "$1" || exit 97
sum=$(sha256sum "$1") || exit 97
if [ "${sum%% *}" != "$2" ]; then
	echo "error: the agent arrived damaged in $1: sha256 ${sum%% *} there, $2 sent" >&2
	exit 97
fi
chmod 0500 "$1" || exit 97
exe=$1
shift 2
exec "$exe" "$@"`

// StagedRun is the command that stages a in a pod's scratch dir from
// the exec's standard input, which must be a's file, and runs it there
// with args, in one exec: an agent's first command in a pod costs one
// round trip, not three (check, upload, run). staged is a once there:
// later commands in that pod run staged.Exe as it is.
func StagedRun(a Binary, args ...string) (cmd []string, staged Binary) {
	staged = a
	staged.Exe = path.Join(nodepod.ScratchDir, a.SHA256)
	return append([]string{"sh", "-c", stageRun, "stage", staged.Exe, a.SHA256}, args...), staged
}

// Find finds the agent for a node of arch in dir: the per-architecture
// name first, then the plain one (a local build). An
// unknown arch ("") takes only the plain one: a release's per-arch agent
// could be the wrong machine code; why is unknown says what went wrong.
func Find(dir, arch string, unknown error) (string, error) {
	if dir == "" {
		// Never the current directory: whatever lies there would run as
		// root on every control-plane node (X5).
		return "", hint.Permanent(errors.New("no agent dir: the plugin cannot tell where its own executable is"),
			"pass --agent-dir, the directory that holds %s-linux-<arch> (a release archive's directory)", Name)
	}
	var tried []string
	names := []string{Name}
	if arch != "" {
		names = append([]string{Name + "-linux-" + arch}, names...)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		tried = append(tried, p)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			if dynamicELF(p) {
				return "", hint.Permanent(fmt.Errorf("the node agent %s is linked dynamically (built with cgo): a node pod has no loader to run it", p),
					"build it static: CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -o %s ./cmd/kubectl-etcd-agent", cmp.Or(arch, "<arch>"), p)
			}
			return p, nil
		}
	}
	if arch == "" {
		return "", hint.Permanent(fmt.Errorf("cannot tell which node agent to upload: %w", unknown),
			"let the plugin read the node (RBAC: get nodes), or put the agent built for it at %s", filepath.Join(dir, Name))
	}
	return "", hint.Permanent(fmt.Errorf("no node agent binary for linux/%s: looked for %v", arch, tried),
		"release archives carry it next to kubectl-etcd (or pass --agent-dir); for a local build run: CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -o %s ./cmd/kubectl-etcd-agent",
		arch, filepath.Join(dir, Name+"-linux-"+arch))
}

// DirOf is where the agents of the plugin at exe are: beside the
// file exe resolves to. krew installs the archive in its store and links
// ~/.krew/bin/kubectl-etcd to the binary there, so the link's own
// directory holds no agent.
func DirOf(exe string) string {
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Dir(exe)
}

// Archs lists the architectures dir has a release agent for.
func Archs(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, Name+"-linux-*"))
	var out []string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
			out = append(out, strings.TrimPrefix(filepath.Base(m), Name+"-linux-"))
		}
	}
	return out
}

// ForNodes finds the agent for each node, keyed by node name, from dir
// (see Find), with its sha256. A node that runs another OS than Linux is
// refused.
func ForNodes(ctx context.Context, client kubernetes.Interface, dir string, nodes []string) (map[string]Binary, error) {
	out := map[string]Binary{}
	sums := map[string]string{}
	for _, node := range nodes {
		arch, err := nodeArch(ctx, client, node)
		var other *otherOSError
		if errors.As(err, &other) {
			return nil, err
		}
		p, err := Find(dir, arch, err)
		if err != nil {
			return nil, err
		}
		if sums[p] == "" {
			if sums[p], err = agentapi.FileSHA256(p); err != nil {
				return nil, err
			}
		}
		out[node] = Binary{Path: p, SHA256: sums[p]}
	}
	return out, nil
}

// Where a node reports its platform when its status has none yet.
const (
	archLabel = "kubernetes.io/arch"
	osLabel   = "kubernetes.io/os"
)

type otherOSError struct{ node, os string }

func (e *otherOSError) Error() string {
	return fmt.Sprintf("node %s runs %s; the node agent runs on linux only", e.node, e.os)
}

// nodeArch is the node's architecture, from its status or else its
// kubernetes.io/arch label, or why it is unknown.
func nodeArch(ctx context.Context, client kubernetes.Interface, name string) (string, error) {
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading node %s for its architecture: %w", name, err)
	}
	goos, arch := n.Status.NodeInfo.OperatingSystem, n.Status.NodeInfo.Architecture
	if goos == "" {
		goos = n.Labels[osLabel]
	}
	if arch == "" {
		arch = n.Labels[archLabel]
	}
	if goos != "" && goos != "linux" {
		return "", &otherOSError{node: name, os: goos}
	}
	if arch == "" {
		return "", fmt.Errorf("node %s reports no architecture (status.nodeInfo, label %s)", name, archLabel)
	}
	return arch, nil
}

// Install puts the agent at its sha256 path unless it is there: a
// binary that an agent runs from cannot be overwritten.
func Install(ctx context.Context, p *nodepod.Pod, a Binary) error {
	dst := nodepod.HostPrefix + a.NodePath()
	var out bytes.Buffer
	check := `umask 077 && mkdir -p "$(dirname "$1")" && { sha256sum "$1" 2>/dev/null || true; }`
	if err := p.Exec(ctx, []string{"sh", "-c", check, "check", dst}, nil, &out, io.Discard); err != nil {
		return fmt.Errorf("check for the agent: %w", err)
	}
	if got, _, _ := strings.Cut(strings.TrimSpace(out.String()), " "); got == a.SHA256 {
		return nil
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := p.Upload(ctx, f, dst+".part"); err != nil {
		return err
	}
	return p.Exec(ctx, []string{"sh", "-c", `chmod 0755 "$1.part" && mv -f "$1.part" "$1"`, "install", dst}, nil, io.Discard, io.Discard)
}

// Run runs `kubectl-etcd-agent args...` in the node pod p, its root the
// node's, and returns what it printed; an error carries its stderr, where
// the agent says why.
func Run(ctx context.Context, p *nodepod.Pod, a Binary, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := append(append([]string{a.exe()}, args...), "--root", nodepod.HostPrefix)
	var out, errb bytes.Buffer
	if err := p.Exec(ctx, cmd, stdin, &out, &errb); err != nil {
		if msg := strings.TrimSpace(errb.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	return out.Bytes(), nil
}

// Journals reads the node's restore journals (`restore status`), or only
// restore id's.
func Journals(ctx context.Context, p *nodepod.Pod, a Binary, id string) ([]agentapi.JournalStatus, error) {
	return JournalsOf(ctx, p, a, agentapi.RestoreOperation, id)
}

// JournalsOf reads the node's journals of operation op (`op status`), or
// only id's.
func JournalsOf(ctx context.Context, p *nodepod.Pod, a Binary, op, id string) ([]agentapi.JournalStatus, error) {
	args := []string{op, "status"}
	if id != "" {
		args = append(args, "--id", id)
	}
	out, err := Run(ctx, p, a, nil, args...)
	if err != nil {
		return nil, fmt.Errorf("read the %s journals: %w", op, err)
	}
	var js []agentapi.JournalStatus
	if err := json.Unmarshal(out, &js); err != nil {
		return nil, fmt.Errorf("the agent's status is not JSON (%v): plugin and agent versions differ?", err)
	}
	return js, nil
}
