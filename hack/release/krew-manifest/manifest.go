package main

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// The parts of krew's v1alpha2 Plugin that the index validates. krew is not
// a dependency: these mirror its documented manifest format.
type Plugin struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       PluginSpec `json:"spec"`
}

type ObjectMeta struct {
	Name string `json:"name"`
}

type PluginSpec struct {
	Version          string     `json:"version"`
	Homepage         string     `json:"homepage"`
	ShortDescription string     `json:"shortDescription"`
	Description      string     `json:"description"`
	Caveats          string     `json:"caveats"`
	Platforms        []Platform `json:"platforms"`
}

type Platform struct {
	Selector Selector        `json:"selector"`
	URI      string          `json:"uri"`
	Sha256   string          `json:"sha256"`
	Files    []FileOperation `json:"files"`
	Bin      string          `json:"bin"`
}

type Selector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type FileOperation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

const (
	apiVersion = "krew.googlecontainertools.github.com/v1alpha2"
	// krew-index asks for a short description that fits a search result.
	maxShortDescription = 50
	// krew's plugin manifest guide asks for a description that explains at
	// a high level what the plugin does, with no list of commands or options
	// (that is what --help is for), and caveats only for an extra step the
	// plugin needs to work, not documentation. krew sets no number; these
	// limits make "a few sentences" and "a step or two" checkable: five
	// lines of 80 columns in "kubectl krew info", and the four lines krew
	// prints after the first install. The previous manifest (631 and 755
	// characters, caveats the second longest in the index) broke both.
	maxDescription = 400
	maxCaveats     = 300
)

var (
	// Semantic version with krew's required v prefix.
	semverRE     = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	pluginNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-_]*$`)
	sha256RE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// A bullet or a "Commands:" heading starts a list krew asks to leave to
	// the plugin's --help.
	listLineRE = regexp.MustCompile(`(?im)^[ \t]*([-*•+]\s|\d+[.)]\s|(sub)?commands\s*:)`)
)

// wantPlatforms are the platforms every release must cover.
var wantPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

// ParsePlugin reads a manifest strictly: an unknown field is a typo krew
// would reject.
func ParsePlugin(data []byte) (*Plugin, error) {
	var p Plugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("parsing the krew manifest: %w", err)
	}
	return &p, nil
}

// Validate applies krew's and krew-index's manifest rules; fileName is the
// manifest's base name, which must be the plugin name.
func (p *Plugin) Validate(fileName string) error {
	var errs problems
	check := errs.check
	check(p.APIVersion == apiVersion, "apiVersion is %q, want %q", p.APIVersion, apiVersion)
	check(p.Kind == "Plugin", "kind is %q, want Plugin", p.Kind)
	check(pluginNameRE.MatchString(p.Metadata.Name), "metadata.name %q is not a valid plugin name", p.Metadata.Name)
	check(fileName == "" || fileName == p.Metadata.Name+".yaml", "file %s must be named %s.yaml", fileName, p.Metadata.Name)
	check(semverRE.MatchString(p.Spec.Version), "spec.version %q is not a semantic version with a v prefix", p.Spec.Version)
	check(strings.HasPrefix(p.Spec.Homepage, "https://"), "spec.homepage %q is not an https URL", p.Spec.Homepage)
	check(p.Spec.ShortDescription != "", "spec.shortDescription is empty")
	check(len(p.Spec.ShortDescription) <= maxShortDescription, "spec.shortDescription is %d characters, krew-index wants at most %d", len(p.Spec.ShortDescription), maxShortDescription)
	check(strings.TrimSpace(p.Spec.Description) != "", "spec.description is empty")
	check(len(p.Spec.Description) <= maxDescription, "spec.description is %d characters, want at most %d: a few sentences on what the plugin does (krew's manifest guide)", len(p.Spec.Description), maxDescription)
	check(!listLineRE.MatchString(p.Spec.Description), "spec.description has a list (%q): krew's manifest guide asks to leave commands and options to --help", listLineRE.FindString(p.Spec.Description))
	check(len(p.Spec.Caveats) <= maxCaveats, "spec.caveats is %d characters, want at most %d: only the steps a user must take after installing, documentation belongs on the homepage (krew's manifest guide)", len(p.Spec.Caveats), maxCaveats)
	check(!listLineRE.MatchString(p.Spec.Caveats), "spec.caveats has a list (%q): documentation belongs on the homepage", listLineRE.FindString(p.Spec.Caveats))
	check(len(p.Spec.Platforms) > 0, "spec.platforms is empty")
	seen := map[string]int{}
	for i, pl := range p.Spec.Platforms {
		if err := pl.validate(); err != nil {
			errs = append(errs, fmt.Errorf("spec.platforms[%d]: %w", i, err))
		}
		seen[pl.OSArch()]++
	}
	for _, want := range wantPlatforms {
		check(seen[want] == 1, "platform %s is matched by %d selectors, want exactly 1", want, seen[want])
	}
	return errors.Join(errs...)
}

// OSArch is the platform the selector matches, as os/arch.
func (pl *Platform) OSArch() string {
	return pl.Selector.MatchLabels["os"] + "/" + pl.Selector.MatchLabels["arch"]
}

func (pl *Platform) validate() error {
	var errs problems
	check := errs.check
	labels := pl.Selector.MatchLabels
	check(len(labels) == 2 && labels["os"] != "" && labels["arch"] != "", "selector.matchLabels must be exactly os and arch, got %v", labels)
	check(strings.HasPrefix(pl.URI, "https://"), "uri %q is not an https URL", pl.URI)
	check(sha256RE.MatchString(pl.Sha256), "sha256 %q is not 64 lowercase hex digits", pl.Sha256)
	check(pl.Bin != "" && path.Base(pl.Bin) == pl.Bin, "bin %q must be a file name", pl.Bin)
	check(labels["os"] != "windows" || strings.HasSuffix(pl.Bin, ".exe"), "bin %q on windows must end in .exe", pl.Bin)
	check(len(pl.Files) > 0, "files is empty")
	for _, f := range pl.Files {
		check(f.From != "" && f.To != "", "files entry %+v needs from and to", f)
		check(!strings.Contains(f.From, ".."), "files entry from %q leaves the archive", f.From)
	}
	return errors.Join(errs...)
}

// problems collects every rule a manifest breaks, so that one run reports
// them all.
type problems []error

func (p *problems) check(ok bool, format string, args ...any) {
	if !ok {
		*p = append(*p, fmt.Errorf(format, args...))
	}
}

// CompletionRecipe returns the shell commands of the caveats' completion
// step: the lines indented under its text, joined as one script. The
// release check runs them against a krew layout, so that what users copy
// is what was tested.
func (p *Plugin) CompletionRecipe() string {
	var lines []string
	for _, l := range strings.Split(p.Spec.Caveats, "\n") {
		if strings.HasPrefix(l, "  ") && strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return strings.Join(lines, "\n")
}
