package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const templateFile = "../../../deploy/krew/etcd.yaml"

func fakeSHA(string) (string, error) { return strings.Repeat("ab", 32), nil }

func renderTemplate(t *testing.T, tag string) *Plugin {
	t.Helper()
	text := readFile(t, templateFile)
	out, err := Render(text, tag, fakeSHA)
	if err != nil {
		t.Fatalf("rendering %s: %v", templateFile, err)
	}
	p, err := ParsePlugin(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return p
}

// TestTemplateRendersValidManifest checks the bot template without a
// release: the archive URLs follow goreleaser's names, and the result passes
// krew's rules.
func TestTemplateRendersValidManifest(t *testing.T) {
	p := renderTemplate(t, "v1.2.3")
	if err := p.Validate("etcd.yaml"); err != nil {
		t.Fatal(err)
	}
	for _, pl := range p.Spec.Platforms {
		want := ReleaseURL("v1.2.3", pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"])
		if pl.URI != want {
			t.Errorf("%s: uri %s, want %s", pl.OSArch(), pl.URI, want)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Plugin)
		want   string
	}{
		{"version without v", func(p *Plugin) { p.Spec.Version = "1.2.3" }, "not a semantic version"},
		{"version not semver", func(p *Plugin) { p.Spec.Version = "v1.2" }, "not a semantic version"},
		{"long short description", func(p *Plugin) { p.Spec.ShortDescription = strings.Repeat("x", 51) }, "at most 50"},
		{"bad name", func(p *Plugin) { p.Metadata.Name = "Etcd/x" }, "not a valid plugin name"},
		{"windows bin without .exe", func(p *Plugin) { p.Spec.Platforms[4].Bin = "kubectl-etcd" }, "must end in .exe"},
		{"duplicate selector", func(p *Plugin) { p.Spec.Platforms[1].Selector = p.Spec.Platforms[0].Selector }, "matched by 2 selectors"},
		{"missing sha256", func(p *Plugin) { p.Spec.Platforms[0].Sha256 = "" }, "sha256"},
		{"missing uri", func(p *Plugin) { p.Spec.Platforms[0].URI = "" }, "uri"},
		{"missing files", func(p *Plugin) { p.Spec.Platforms[0].Files = nil }, "files is empty"},
		{"long description", func(p *Plugin) { p.Spec.Description = strings.Repeat("etcd ", 81) }, "spec.description is 405 characters"},
		{"commands in description", func(p *Plugin) { p.Spec.Description += "\nCommands: members, health, status.\n" }, "spec.description has a list"},
		{"bullets in description", func(p *Plugin) { p.Spec.Description += "\n  * backup: a verified snapshot\n" }, "spec.description has a list"},
		{"long caveats", func(p *Plugin) { p.Spec.Caveats = strings.Repeat("etcd ", 61) }, "spec.caveats is 305 characters"},
		{"bullets in caveats", func(p *Plugin) { p.Spec.Caveats = "Needs:\n- get on pods\n" }, "spec.caveats has a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := renderTemplate(t, "v1.2.3")
			tt.mutate(p)
			err := p.Validate("etcd.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestRenderFailsWhenAnArchiveIsMissing(t *testing.T) {
	missing := func(string) (string, error) { return "", errors.New("no such archive") }
	if _, err := Render(readFile(t, templateFile), "v1.2.3", missing); err == nil || !strings.Contains(err.Error(), "no such archive") {
		t.Fatalf("Render() = %v, want the resolver's error", err)
	}
}

// TestPartialResolver checks that -partial stands in only for archives
// goreleaser did not build: one that checksums.txt lists must be there, and
// one that is there must match checksums.txt.
func TestPartialResolver(t *testing.T) {
	dist := t.TempDir()
	built := filepath.Join(dist, "built.tar.gz")
	if err := os.WriteFile(built, []byte("archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := FileSHA256(built)
	if err != nil {
		t.Fatal(err)
	}
	url := func(name string) string { return "https://example.com/download/" + name }
	tests := []struct {
		name, file string
		sums       map[string]string
		want, err  string
	}{
		{"built", "built.tar.gz", map[string]string{"built.tar.gz": sum}, sum, ""},
		{"not built", "other.tar.gz", map[string]string{"built.tar.gz": sum}, UnbuiltSHA256, ""},
		{"listed but missing", "other.tar.gz", map[string]string{"other.tar.gz": sum}, "", "no such file"},
		{"there but not listed", "built.tar.gz", map[string]string{}, "", "checksums.txt says"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PartialResolver(dist, tt.sums, DistResolver(dist, tt.sums))(url(tt.file))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// The placeholder must survive YAML (64 zeros would parse as 0) and
	// pass krew's rules.
	out, err := Render(readFile(t, templateFile), "v1.2.3", func(string) (string, error) { return UnbuiltSHA256, nil })
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePlugin(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate("etcd.yaml"); err != nil {
		t.Errorf("a manifest of placeholders breaks krew's rules: %v", err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCompletionRecipe runs the caveats' completion step in a fake krew
// root and checks that the script it writes hands its words to whatever
// kubectl-etcd is on PATH, so that it survives upgrades.
func TestCompletionRecipe(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	p := renderTemplate(t, "v1.2.3")
	recipe := p.CompletionRecipe()
	if !strings.Contains(recipe, "kubectl_complete-etcd") {
		t.Fatalf("caveats have no completion step writing kubectl_complete-etcd:\n%s", p.Spec.Caveats)
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// A stand-in for krew's kubectl-etcd link that prints its arguments.
	fake := "#!/bin/sh\nprintf '%s|' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "kubectl-etcd"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run([]string{"KREW_ROOT=" + root, "HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}, "sh", "-c", recipe)
	shim := filepath.Join(bin, "kubectl_complete-etcd")
	got := run([]string{"PATH=" + bin + ":/usr/bin:/bin"}, shim, "backup", "--member", "")
	if want := "__complete|backup|--member||"; got != want {
		t.Errorf("%s printed %q, want %q", shim, got, want)
	}
}
