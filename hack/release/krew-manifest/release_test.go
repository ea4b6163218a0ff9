//go:build release

// The release check, run by hack/release/check.sh after a goreleaser build:
//
//	go test -tags release ./hack/release/krew-manifest -args -dist "$PWD/dist" [-partial]
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var (
	distDir = flag.String("dist", "../../../dist", "goreleaser output directory holding the archives and krew/etcd.yaml")
	partial = flag.Bool("partial", false, "accept a dist/ that holds this machine's archive and maybe others, not all (a manifest rendered by krew-manifest -partial)")
)

// TestReleaseArchives checks the rendered manifest against krew's rules and
// against the archives it names, installs each archive as krew would, and
// runs this machine's build through kubectl's plugin discovery. Every
// archive in checksums.txt must be named by the manifest. Without -partial
// every platform's archive must be in dist/; with it, a platform whose
// archive goreleaser did not build is skipped, provided the manifest gives
// it the placeholder sha256 (so that no built archive goes unchecked), and
// this machine's must be there.
func TestReleaseArchives(t *testing.T) {
	meta, err := ReadMetadata(*distDir)
	if err != nil {
		t.Fatal(err)
	}
	manifestFile := filepath.Join(*distDir, "krew", "etcd.yaml")
	p, err := ParsePlugin([]byte(readFile(t, manifestFile)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(filepath.Base(manifestFile)); err != nil {
		t.Fatalf("%s breaks krew's rules:\n%v", manifestFile, err)
	}
	if p.Spec.Version != meta.Tag {
		t.Errorf("spec.version %s, want the release tag %s", p.Spec.Version, meta.Tag)
	}
	sums, err := ReadChecksums(filepath.Join(*distDir, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, pl := range p.Spec.Platforms {
		named[filepath.Base(pl.URI)] = true
	}
	for name := range sums {
		if !named[name] {
			t.Errorf("%s is in checksums.txt but no platform of %s names it", name, manifestFile)
		}
	}
	host := runtime.GOOS + "/" + runtime.GOARCH
	for _, pl := range p.Spec.Platforms {
		t.Run(strings.ReplaceAll(pl.OSArch(), "/", "_"), func(t *testing.T) {
			name := filepath.Base(pl.URI)
			if _, err := os.Stat(filepath.Join(*distDir, name)); errors.Is(err, fs.ErrNotExist) {
				switch {
				case !*partial:
					t.Fatalf("%s is not in %s: build every platform (hack/release/check.sh --full), or pass -partial", name, *distDir)
				case pl.OSArch() == host:
					t.Fatalf("%s is not in %s: -partial still needs this machine's archive, to run it through kubectl", name, *distDir)
				case pl.Sha256 != UnbuiltSHA256:
					t.Fatalf("%s is not in %s, but the manifest gives it sha256 %s, not krew-manifest -partial's placeholder", name, *distDir, pl.Sha256)
				}
				t.Skipf("%s not built (-partial)", name)
			}
			bin := installPlatform(t, meta.Tag, pl)
			goos, arch := pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"]
			if goos == "linux" {
				assertStatic(t, bin)
				assertStatic(t, filepath.Join(filepath.Dir(bin), "kubectl_complete-etcd"))
			}
			if goos == runtime.GOOS && arch == runtime.GOARCH {
				runThroughKubectl(t, filepath.Dir(bin), meta)
				if goos != "windows" {
					completeThroughKrewLayout(t, p, pl, meta)
				}
			}
		})
	}
}

// installPlatform checks one platform's archive (URL, sha256, files, bin)
// and returns the installed bin.
func installPlatform(t *testing.T, tag string, pl Platform) string {
	t.Helper()
	goos, arch := pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"]
	if want := ReleaseURL(tag, goos, arch); pl.URI != want {
		t.Errorf("uri %s, want %s", pl.URI, want)
	}
	archive := filepath.Join(*distDir, filepath.Base(pl.URI))
	sum, err := FileSHA256(archive)
	if err != nil {
		t.Fatal(err)
	}
	if sum != pl.Sha256 {
		t.Errorf("%s: sha256 %s, manifest says %s", archive, sum, pl.Sha256)
	}
	unpacked, installDir := t.TempDir(), t.TempDir()
	if err := Unpack(archive, unpacked); err != nil {
		t.Fatal(err)
	}
	exe := map[bool]string{true: ".exe"}[goos == "windows"]
	for _, name := range append([]string{"LICENSE", "kubectl-etcd" + exe, "kubectl_complete-etcd" + exe}, agents...) {
		if _, err := os.Stat(filepath.Join(unpacked, name)); err != nil {
			t.Errorf("%s lacks %s", archive, name)
		}
	}
	bin, err := Install(pl, unpacked, installDir)
	if err != nil {
		t.Fatalf("installing %s: %v", archive, err)
	}
	if fi, err := os.Stat(bin); err != nil || (goos != "windows" && fi.Mode().Perm()&0o111 == 0) {
		t.Errorf("bin %s is not an executable file (%v)", bin, err)
	}
	// Every platform's install holds both Linux agents beside the bin,
	// where restore looks: a macOS workstation restores Linux nodes.
	for _, a := range agents {
		assertAgent(t, filepath.Join(filepath.Dir(bin), a))
	}
	return bin
}

// agents are the node agents every archive carries.
var agents = []string{"kubectl-etcd-agent-linux-amd64", "kubectl-etcd-agent-linux-arm64"}

// assertAgent checks an installed agent: a static, executable Linux
// binary for the architecture its name says.
func assertAgent(t *testing.T, file string) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Errorf("agent not installed: %v", err)
		return
	}
	if fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("%s has mode %v: not executable", file, fi.Mode().Perm())
	}
	f, err := elf.Open(file)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[strings.TrimPrefix(filepath.Base(file), "kubectl-etcd-agent-linux-")]
	if f.Machine != want || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		t.Errorf("%s is %v (OS ABI %v), want a Linux %v binary", file, f.Machine, f.OSABI, want)
	}
	assertStatic(t, file)
}

// assertStatic fails on an ELF binary with a dynamic loader: the release
// builds are CGO_ENABLED=0 so that they run on any distribution.
func assertStatic(t *testing.T, file string) {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (PT_INTERP); build it with CGO_ENABLED=0", file)
		}
	}
}

// runThroughKubectl puts the installed plugin on PATH and runs it as
// "kubectl etcd", as a user would, and completes "kubectl etcd <TAB>".
func runThroughKubectl(t *testing.T, dir string, meta *Metadata) {
	t.Helper()
	kubectl := findKubectl(t)
	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))

	out := runCmd(t, env, kubectl, "etcd", "version")
	for _, want := range []string{"kubectl-etcd v" + meta.Version + " ", "commit " + meta.Commit} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl etcd version printed %q, want it to contain %q (ldflags stamping)", out, want)
		}
	}
	out = runCmd(t, env, kubectl, "__complete", "etcd", "")
	for _, want := range []string{"backup", "members", "snapshot"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl __complete etcd \"\" printed %q, want %q (kubectl_complete-etcd)", out, want)
		}
	}
}

func runCmd(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out)
	return string(out)
}

// findKubectl prefers $KUBECTL, then the system kubectl, then the one on
// PATH (/usr/local/bin on GitHub's runners), then one built by the
// hack/cluster harness.
func findKubectl(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("KUBECTL"), "/usr/bin/kubectl"}
	if onPath, err := exec.LookPath("kubectl"); err == nil {
		candidates = append(candidates, onPath)
	}
	cache := os.Getenv("HC_CACHE")
	if cache == "" {
		cache = "/var/cache/kubectl-etcd-hack"
	}
	built, _ := filepath.Glob(filepath.Join(cache, "bin/k8s-*/kubectl"))
	for _, c := range append(candidates, built...) {
		if fi, err := os.Stat(c); c != "" && err == nil && fi.Mode().IsRegular() {
			return c
		}
	}
	t.Fatal("no kubectl to run the plugin through: set $KUBECTL, put one on PATH, or build one with hack/cluster/build.sh")
	return ""
}

// completeThroughKrewLayout installs the archive as krew does (the files in
// store/etcd/<version>, a kubectl-etcd link in bin, only bin on PATH), runs
// the caveats' completion step, and checks that "kubectl etcd <TAB>"
// completes, that "kubectl plugin list" sees one plugin and exits 0, and
// that both still hold after an upgrade removes the old store directory.
func completeThroughKrewLayout(t *testing.T, p *Plugin, pl Platform, meta *Metadata) {
	t.Helper()
	kubectl := findKubectl(t)
	root := t.TempDir()
	binDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	install := func(version string) string {
		unpacked := t.TempDir()
		if err := Unpack(filepath.Join(*distDir, filepath.Base(pl.URI)), unpacked); err != nil {
			t.Fatal(err)
		}
		store := filepath.Join(root, "store", "etcd", version)
		bin, err := Install(pl, unpacked, store)
		if err != nil {
			t.Fatal(err)
		}
		// Relative, as krew 0.5 links (older ones link absolute paths).
		target, err := filepath.Rel(binDir, bin)
		if err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(binDir, "kubectl-etcd")
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		return store
	}
	old := install(meta.Tag)

	recipe := p.CompletionRecipe()
	sh := exec.Command("sh", "-c", recipe)
	sh.Env = []string{"KREW_ROOT=" + root, "HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("the caveats' completion step failed: %v\n%s\n%s", err, recipe, out)
	}

	env := []string{"PATH=" + binDir, "HOME=" + t.TempDir(), "KUBECONFIG=" + filepath.Join(t.TempDir(), "none")}
	check := func(when, store string) {
		t.Helper()
		// restore uploads the agents beside the file the link resolves
		// to, not beside the link; version says where that is.
		store, err := filepath.EvalSymlinks(store)
		if err != nil {
			t.Fatal(err)
		}
		out := runCmd(t, env, kubectl, "etcd", "version")
		if want := "node agents: linux/amd64, linux/arm64 in " + store + "\n"; !strings.Contains(out, want) {
			t.Errorf("%s: kubectl etcd version through the krew link printed %q, want %q", when, out, want)
		}
		out = runCmd(t, env, kubectl, "__complete", "etcd", "")
		for _, want := range []string{"backup", "members", "snapshot"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: kubectl __complete etcd \"\" printed %q, want %q", when, out, want)
			}
		}
		cmd := exec.Command(kubectl, "plugin", "list")
		cmd.Env = env
		list, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(list), "warning") || strings.Count(string(list), "kubectl-etcd") != 1 {
			t.Errorf("%s: kubectl plugin list: %v\n%s", when, err, list)
		}
	}
	check("after install", old)
	upgraded := install("v999.0.0")
	if err := os.RemoveAll(old); err != nil {
		t.Fatal(err)
	}
	check("after an upgrade", upgraded)
}
