// Command krew-manifest renders the krew-release-bot template
// deploy/krew/etcd.yaml into a concrete manifest for the archives in a local
// goreleaser dist/ directory, the way the bot does for a GitHub release:
//
//	go run ./hack/release/krew-manifest -dist dist -o dist/krew/etcd.yaml
//
// Each archive's sha256 is computed from the file and must match
// dist/checksums.txt. The tag defaults to the one in dist/metadata.json.
//
// With -partial, dist/ may hold only some platforms' archives (the CI-sized
// hack/release/check.sh builds the host's alone): a platform whose archive
// goreleaser did not build gets the placeholder sha256 UnbuiltSHA256, which
// the release test skips only when told -partial too.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"
)

func main() {
	tmpl := flag.String("template", "deploy/krew/etcd.yaml", "krew-release-bot template")
	dist := flag.String("dist", "dist", "goreleaser output directory")
	tag := flag.String("tag", "", "release tag (default: the tag in DIST/metadata.json)")
	out := flag.String("o", "dist/krew/etcd.yaml", "where to write the manifest")
	partial := flag.Bool("partial", false, "give the platforms whose archive is not in DIST (nor in its checksums.txt) the sha256 "+UnbuiltSHA256)
	flag.Parse()
	if err := run(*tmpl, *dist, *tag, *out, *partial); err != nil {
		fmt.Fprintf(os.Stderr, "krew-manifest: %v\n", err)
		os.Exit(1)
	}
}

func run(tmplFile, dist, tag, out string, partial bool) error {
	if tag == "" {
		meta, err := ReadMetadata(dist)
		if err != nil {
			return err
		}
		tag = meta.Tag
	}
	text, err := os.ReadFile(tmplFile)
	if err != nil {
		return err
	}
	sums, err := ReadChecksums(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		return err
	}
	resolve := DistResolver(dist, sums)
	if partial {
		resolve = PartialResolver(dist, sums, resolve)
	}
	manifest, err := Render(string(text), tag, resolve)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, manifest, 0o644)
}

// Metadata is what goreleaser writes to dist/metadata.json.
type Metadata struct {
	Tag     string `json:"tag"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// ReadMetadata reads dist/metadata.json.
func ReadMetadata(dist string) (*Metadata, error) {
	data, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err != nil {
		return nil, fmt.Errorf("%w (run goreleaser first: hack/release/check.sh)", err)
	}
	var m Metadata
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dist, "metadata.json"), err)
	}
	return &m, nil
}

// Resolver returns the sha256 of the archive a release URL names.
type Resolver func(url string) (string, error)

// Render executes a krew-release-bot template for tag. As with the bot,
// addURIAndSha takes a URL that is itself a template over .TagName.
func Render(text, tag string, resolve Resolver) ([]byte, error) {
	data := struct{ TagName string }{tag}
	funcs := template.FuncMap{
		"addURIAndSha": func(urlTmpl, tagName string) (string, error) {
			url, err := execute(urlTmpl, struct{ TagName string }{tagName})
			if err != nil {
				return "", err
			}
			sum, err := resolve(url)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", url, sum), nil
		},
	}
	t, err := template.New("krew").Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func execute(text string, data any) (string, error) {
	t, err := template.New("uri").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = t.Execute(&b, data)
	return b.String(), err
}

// DistResolver finds a release URL's archive in dist by its file name and
// hashes it; the hash must agree with checksums.txt.
func DistResolver(dist string, sums map[string]string) Resolver {
	return func(url string) (string, error) {
		name := path.Base(url)
		sum, err := FileSHA256(filepath.Join(dist, name))
		if err != nil {
			return "", fmt.Errorf("archive for %s: %w", url, err)
		}
		if want, ok := sums[name]; !ok || want != sum {
			return "", fmt.Errorf("%s: sha256 %s, checksums.txt says %q", name, sum, want)
		}
		return sum, nil
	}
}

// UnbuiltSHA256 is the sha256 that -partial gives a platform whose archive
// was not built: that of an empty file, which no archive is, and 64 hex
// digits that YAML reads as a string (64 zeros would be the number 0), so
// that the manifest still passes krew's rules.
var UnbuiltSHA256 = hex.EncodeToString(sha256.New().Sum(nil))

// PartialResolver resolves an archive that is absent from dist and from its
// checksums.txt to UnbuiltSHA256, and every other one through resolve: an
// archive that checksums.txt lists must be there and match.
func PartialResolver(dist string, sums map[string]string, resolve Resolver) Resolver {
	return func(url string) (string, error) {
		name := path.Base(url)
		if _, listed := sums[name]; !listed {
			if _, err := os.Stat(filepath.Join(dist, name)); errors.Is(err, fs.ErrNotExist) {
				return UnbuiltSHA256, nil
			}
		}
		return resolve(url)
	}
}

// ReadChecksums parses a sha256sum-style file into file name -> hex sum.
func ReadChecksums(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			return nil, fmt.Errorf("%s: malformed line %q", file, sc.Text())
		}
		sums[name] = sum
	}
	return sums, sc.Err()
}

// FileSHA256 returns the hex sha256 of a file.
func FileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
