package schedule

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/version"
)

// The image the release pushes is the one a schedule asks for by
// default: .goreleaser.yaml's dockers_v2 tags, rendered for a release,
// a release candidate and a snapshot, hold the tag DefaultImage gives a
// plugin stamped by the same file's ldflags; and its Dockerfile puts
// kubectl-etcd on PATH, where the CronJob's command finds it.
func TestDefaultImageIsReleased(t *testing.T) {
	var cfg struct {
		Builds []struct {
			ID      string   `json:"id"`
			Ldflags []string `json:"ldflags"`
		} `json:"builds"`
		DockersV2 []struct {
			IDs        []string `json:"ids"`
			Dockerfile string   `json:"dockerfile"`
			Images     []string `json:"images"`
			Tags       []string `json:"tags"`
			Platforms  []string `json:"platforms"`
		} `json:"dockers_v2"`
	}
	b, err := os.ReadFile("../../.goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	var stamp string
	for _, bd := range cfg.Builds {
		for _, f := range bd.Ldflags {
			if _, v, ok := strings.Cut(f, "/pkg/version.Version="); ok && bd.ID == "kubectl-etcd" {
				stamp = v
			}
		}
	}
	if stamp == "" || len(cfg.DockersV2) != 1 {
		t.Fatalf("want the kubectl-etcd build's version ldflag (got %q) and one dockers_v2 image (got %d)", stamp, len(cfg.DockersV2))
	}
	d := cfg.DockersV2[0]
	if !slices.Equal(d.Images, []string{ImageRepo}) || !slices.Equal(d.IDs, []string{"kubectl-etcd"}) ||
		!slices.Contains(d.Platforms, "linux/amd64") || !slices.Contains(d.Platforms, "linux/arm64") {
		t.Errorf("dockers_v2: images %v, ids %v, platforms %v; want %s of the kubectl-etcd build, linux/amd64 and arm64", d.Images, d.IDs, d.Platforms, ImageRepo)
	}
	defer func(v string) { version.Version = v }(version.Version)
	validTag := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	for _, v := range []string{"0.4.0", "0.5.0-rc.1", "0.4.1-snapshot+1a2b3c4"} {
		version.Version = render(t, stamp, v)
		var images []string
		for _, tag := range d.Tags {
			tag = render(t, tag, v)
			if !validTag.MatchString(tag) {
				t.Errorf("version %s: tag %q is not a valid image tag", v, tag)
			}
			images = append(images, ImageRepo+":"+tag)
		}
		if !slices.Contains(images, DefaultImage()) {
			t.Errorf("version %s: the plugin (%s) asks for %s; the release pushes %v", v, version.Version, DefaultImage(), images)
		}
	}
	df, err := os.ReadFile("../../" + d.Dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"COPY $TARGETPLATFORM/kubectl-etcd /usr/local/bin/kubectl-etcd\n", "ENV PATH=/usr/local/sbin:/usr/local/bin:"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("%s has no %q: the CronJob runs kubectl-etcd from PATH", d.Dockerfile, want)
		}
	}
}

// render is a goreleaser template of .Version, with its replace.
func render(t *testing.T, tmpl, v string) string {
	t.Helper()
	tp, err := template.New("").Funcs(template.FuncMap{"replace": strings.ReplaceAll}).Parse(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tp.Execute(&b, map[string]string{"Version": v}); err != nil {
		t.Fatalf("%s: %v", tmpl, err)
	}
	return b.String()
}
