package agentclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// Without an agent dir the current directory is never searched (X5).
func TestFindAgentNeedsADir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile(filepath.Join(dir, Name+"-linux-amd64"), []byte("\x7fELF"), 0o755)
	if p, err := Find("", "amd64", nil); err == nil || !strings.Contains(err.Error(), "--agent-dir") {
		t.Fatalf("Find(\"\") = %q, %v; want a refusal naming --agent-dir", p, err)
	}
}

// An agent built with cgo cannot run in a node pod's minimal image (it
// would fail there with "not found"): it is refused here, by name.
func TestFindAgentRefusesADynamicOne(t *testing.T) {
	dynamic, err := os.ReadFile("/bin/sh") // linked dynamically on Debian
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, Name+"-linux-amd64")
	if err := os.WriteFile(p, dynamic, 0o755); err != nil {
		t.Fatal(err)
	}
	if !dynamicELF(p) {
		t.Fatalf("/bin/sh is linked statically here: no dynamic executable to test with")
	}
	_, err = Find(dir, "amd64", nil)
	if err == nil || !strings.Contains(err.Error(), "the node agent "+p+" is linked dynamically") || !strings.Contains(hint.Of(err), "CGO_ENABLED=0") {
		t.Errorf("err = %v (hint %q)", err, hint.Of(err))
	}
	if dynamicELF(filepath.Join(dir, "none")) || dynamicELF("agentclient.go") {
		t.Error("a missing file or a text file counts as dynamic")
	}
}

func TestFindAgent(t *testing.T) {
	release := []string{"kubectl-etcd-agent-linux-amd64", "kubectl-etcd-agent-linux-arm64"}
	unknown := errors.New("nodes is forbidden")
	tests := []struct {
		name    string
		files   []string
		arch    string
		want    string
		wantErr string
	}{
		{name: "amd64 from a release", files: release, arch: "amd64", want: "kubectl-etcd-agent-linux-amd64"},
		{name: "arm64 from a release", files: release, arch: "arm64", want: "kubectl-etcd-agent-linux-arm64"},
		{name: "a local build for any arch", files: []string{"kubectl-etcd-agent"}, arch: "arm64", want: "kubectl-etcd-agent"},
		{name: "the per-arch one before the plain one", files: append([]string{"kubectl-etcd-agent"}, release...), arch: "arm64", want: "kubectl-etcd-agent-linux-arm64"},
		{name: "an arch the release lacks", files: release, arch: "s390x", wantErr: "no node agent binary for linux/s390x"},
		{name: "unknown arch takes the plain one", files: append([]string{"kubectl-etcd-agent"}, release...), want: "kubectl-etcd-agent"},
		{name: "unknown arch never guesses a release one", files: release, wantErr: "cannot tell which node agent to upload: nodes is forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files...)
			got, err := Find(dir, tc.arch, unknown)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || hint.Of(err) == "" || !hint.IsPermanent(err) {
					t.Fatalf("err = %v, want %q with a hint", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != filepath.Join(dir, tc.want) {
				t.Fatalf("Find = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// TestAgentDirOfKrewLink lays out a krew install: the archive unpacked in
// store/etcd/<version>, and bin/kubectl-etcd a link to the binary there
// (relative since krew 0.5, absolute before).
func TestAgentDirOfKrewLink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need a privilege on Windows")
	}
	root := t.TempDir()
	store := filepath.Join(root, "store", "etcd", "v1.2.3")
	writeFiles(t, store, "kubectl-etcd", "kubectl-etcd-agent-linux-amd64", "kubectl-etcd-agent-linux-arm64")
	bin := filepath.Join(root, "bin")
	writeFiles(t, bin)
	relative := filepath.Join(bin, "kubectl-etcd")
	if err := os.Symlink(filepath.Join("..", "store", "etcd", "v1.2.3", "kubectl-etcd"), relative); err != nil {
		t.Fatal(err)
	}
	absolute := filepath.Join(bin, "kubectl-etcd-abs")
	if err := os.Symlink(filepath.Join(store, "kubectl-etcd"), absolute); err != nil {
		t.Fatal(err)
	}
	chained := filepath.Join(root, "kubectl-etcd-chained")
	if err := os.Symlink(relative, chained); err != nil {
		t.Fatal(err)
	}
	realStore, err := filepath.EvalSymlinks(store) // the temp dir may itself be behind a link (macOS /var)
	if err != nil {
		t.Fatal(err)
	}
	for name, exe := range map[string]string{"relative link": relative, "absolute link": absolute, "link to a link": chained, "the file itself": filepath.Join(store, "kubectl-etcd")} {
		t.Run(name, func(t *testing.T) {
			dir := DirOf(exe)
			if dir != realStore {
				t.Fatalf("DirOf(%s) = %s, want %s", exe, dir, realStore)
			}
			if got := strings.Join(Archs(dir), ","); got != "amd64,arm64" {
				t.Errorf("Archs = %s", got)
			}
			if _, err := Find(dir, "arm64", nil); err != nil {
				t.Error(err)
			}
		})
	}
	if got := DirOf(filepath.Join(root, "missing")); got != root {
		t.Errorf("DirOf of a missing file = %s, want its directory", got)
	}
}

func TestNodeArch(t *testing.T) {
	node := func(name, goos, arch string, labels map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{OperatingSystem: goos, Architecture: arch}}}
	}
	cs := fake.NewClientset(
		node("status-arm", "linux", "arm64", map[string]string{archLabel: "amd64"}),
		node("label-only", "", "", map[string]string{osLabel: "linux", archLabel: "arm64"}),
		node("windows", "windows", "amd64", nil),
		node("windows-label", "", "", map[string]string{osLabel: "windows", archLabel: "amd64"}),
		node("bare", "", "", nil),
	)
	tests := []struct {
		node, want, wantErr string
		otherOS             bool
	}{
		{node: "status-arm", want: "arm64"},
		{node: "label-only", want: "arm64"},
		{node: "windows", wantErr: "runs windows", otherOS: true},
		{node: "windows-label", wantErr: "runs windows", otherOS: true},
		{node: "bare", wantErr: "reports no architecture"},
		{node: "gone", wantErr: "reading node gone"},
	}
	for _, tc := range tests {
		t.Run(tc.node, func(t *testing.T) {
			got, err := nodeArch(context.Background(), cs, tc.node)
			var other *otherOSError
			if got != tc.want || (tc.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantErr) || errors.As(err, &other) != tc.otherOS {
				t.Fatalf("nodeArch = %q, %v; want %q, %q", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestFindAgentsPerNode gives each node the agent of its architecture.
func TestFindAgentsPerNode(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "kubectl-etcd-agent-linux-amd64", "kubectl-etcd-agent-linux-arm64")
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-x86"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-arm", Labels: map[string]string{archLabel: "arm64"}}},
	)
	nodes := []string{"cp-x86", "cp-arm"}
	got, err := ForNodes(context.Background(), cs, dir, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(got["cp-x86"].Path) != "kubectl-etcd-agent-linux-amd64" || filepath.Base(got["cp-arm"].Path) != "kubectl-etcd-agent-linux-arm64" ||
		got["cp-x86"].SHA256 == got["cp-arm"].SHA256 || len(got["cp-arm"].SHA256) != 64 {
		t.Errorf("agents %+v", got)
	}
	nodes = append(nodes, "cp-win")
	if err := cs.Tracker().Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-win"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "windows"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ForNodes(context.Background(), cs, dir, nodes); err == nil || !strings.Contains(err.Error(), "runs windows") {
		t.Errorf("a windows node: %v", err)
	}
}
