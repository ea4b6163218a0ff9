package main

import (
	"errors"
	"os"
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

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
