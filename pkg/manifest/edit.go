package manifest

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// site is one scalar that holds the data dir: the value starts prefix bytes
// into the scalar (after "--data-dir=" for the joined flag form).
type site struct {
	node   *yaml.Node
	prefix int
	value  string
	what   string
}

// flagSites finds --name in the argv, in both the "--name=v" and the
// "--name v" forms; etcd's Go flag parser also takes a single dash.
func (p *pod) flagSites(name string) []site {
	argv := p.argv()
	var out []site
	for i, n := range argv {
		for _, dash := range []string{"--", "-"} {
			flag := dash + name
			switch {
			case n.Value == flag && i+1 < len(argv):
				out = append(out, site{node: argv[i+1], value: argv[i+1].Value, what: flag})
			case strings.HasPrefix(n.Value, flag+"="):
				out = append(out, site{node: n, prefix: len(flag) + 1, value: n.Value[len(flag)+1:], what: flag})
			}
		}
	}
	return out
}

// envSites finds ETCD_DATA_DIR, which etcd reads when the flag is absent.
func (p *pod) envSites() ([]site, error) {
	env := lookup(p.container, "env")
	if env == nil || env.Kind != yaml.SequenceNode {
		return nil, nil
	}
	var out []site
	for _, item := range env.Content {
		if scalar(lookup(item, "name")) != "ETCD_DATA_DIR" {
			continue
		}
		v := lookup(item, "value")
		if v == nil || v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("ETCD_DATA_DIR in the etcd manifest has no literal value (valueFrom?): set --data-dir in the manifest by hand, then retry")
		}
		out = append(out, site{node: v, value: v.Value, what: "env ETCD_DATA_DIR"})
	}
	return out, nil
}

// dataDirSites returns the flag and env sites, which must agree.
func (p *pod) dataDirSites() ([]site, error) {
	env, err := p.envSites()
	if err != nil {
		return nil, err
	}
	sites := append(p.flagSites("data-dir"), env...)
	if len(sites) == 0 {
		return nil, fmt.Errorf("the etcd manifest sets no --data-dir and no ETCD_DATA_DIR, so etcd uses a dir inside its container: add --data-dir=/var/lib/etcd and a hostPath volume for it")
	}
	for _, s := range sites[1:] {
		if s.value != sites[0].value {
			return nil, fmt.Errorf("the etcd manifest names two data dirs (%s=%s, %s=%s): make them one, then retry", sites[0].what, sites[0].value, s.what, s.value)
		}
	}
	return sites, nil
}

// volumeSites returns the volumeMount at the data dir and the hostPath it
// mounts. Both change with the flag: a new --data-dir whose mount stayed at
// the old path would start etcd on an empty dir inside its container.
func (p *pod) volumeSites(dataDir string) ([]site, error) {
	mount, name, err := p.dataMount(dataDir)
	if err != nil {
		return nil, err
	}
	hp, err := p.hostPath(name)
	if err != nil {
		return nil, err
	}
	if path.Clean(hp.Value) != path.Clean(dataDir) {
		return nil, fmt.Errorf("volume %q holds the data dir %s at host path %s; only kubeadm's layout, where the two are the same, is supported: edit the manifest by hand", name, dataDir, hp.Value)
	}
	return []site{
		{node: mount, value: mount.Value, what: "volumeMounts mountPath"},
		{node: hp, value: hp.Value, what: "hostPath path"},
	}, nil
}

func (p *pod) dataMount(dataDir string) (*yaml.Node, string, error) {
	mounts := lookup(p.container, "volumeMounts")
	var found *yaml.Node
	var name string
	if mounts != nil {
		for _, m := range mounts.Content {
			mp := lookup(m, "mountPath")
			if mp == nil || path.Clean(mp.Value) != path.Clean(dataDir) {
				continue
			}
			if found != nil {
				return nil, "", fmt.Errorf("two volumes are mounted at the data dir %s: keep one, then retry", dataDir)
			}
			found, name = mp, scalar(lookup(m, "name"))
		}
	}
	if found == nil {
		return nil, "", fmt.Errorf("no volume is mounted at the data dir %s, so etcd's data lives in its container; mount a hostPath there first", dataDir)
	}
	return found, name, nil
}

func (p *pod) hostPath(name string) (*yaml.Node, error) {
	if p.volumes != nil {
		for _, v := range p.volumes.Content {
			if scalar(lookup(v, "name")) != name {
				continue
			}
			hp := lookup(lookup(v, "hostPath"), "path")
			if hp == nil || hp.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("volume %q at the data dir is not a hostPath volume; only kubeadm's hostPath layout is supported", name)
			}
			return hp, nil
		}
	}
	return nil, fmt.Errorf("the data dir's volumeMount names volume %q, which spec.volumes does not define: fix the manifest first", name)
}

// SetDataDir points the etcd manifest at newDir: the --data-dir flag (or
// ETCD_DATA_DIR), the volumeMount at the data dir and that volume's
// hostPath. Only those scalars change; every other byte is kept. It
// returns the rewritten manifest and the old data dir.
func SetDataDir(src []byte, newDir string) ([]byte, string, error) {
	if err := checkDir(newDir); err != nil {
		return nil, "", err
	}
	p, err := parse(src)
	if err != nil {
		return nil, "", err
	}
	sites, err := p.dataDirSites()
	if err != nil {
		return nil, "", err
	}
	old := sites[0].value
	if err := checkNewAgainstOld(newDir, old); err != nil {
		return nil, "", err
	}
	vol, err := p.volumeSites(old)
	if err != nil {
		return nil, "", err
	}
	out, err := splice(src, append(sites, vol...), newDir)
	return out, old, err
}

// checkDir keeps to characters that are plain in YAML, in any quoting
// style, and in a shell, so that the splice cannot change the document's
// structure and script mode can print the path as it is.
func checkDir(dir string) error {
	if !path.IsAbs(dir) || path.Clean(dir) != dir || dir == "/" {
		return fmt.Errorf("new data dir %q must be a clean absolute path such as /var/lib/etcd-restore-20260102T030405Z", dir)
	}
	for _, r := range dir {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-", r)) {
			return fmt.Errorf("new data dir %q has %q; use only letters, digits and / . _ -", dir, r)
		}
	}
	return nil
}

func checkNewAgainstOld(newDir, old string) error {
	o := path.Clean(old)
	switch {
	case newDir == o:
		return fmt.Errorf("the new data dir %s is the current one: choose a new path", newDir)
	case strings.HasPrefix(newDir, o+"/"), strings.HasPrefix(o, newDir+"/"):
		// The old dir is moved aside whole; one inside the other would move both.
		return fmt.Errorf("the new data dir %s and the current %s are nested: choose a path beside it", newDir, o)
	}
	return nil
}

// splice replaces each site's value in src, from the end backwards so that
// earlier offsets stay valid.
func splice(src []byte, sites []site, newDir string) ([]byte, error) {
	type edit struct{ at, n int }
	var edits []edit
	for _, s := range sites {
		at, err := offset(src, s)
		if err != nil {
			return nil, err
		}
		edits = append(edits, edit{at + s.prefix, len(s.value)})
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].at > edits[j].at })
	out := append([]byte{}, src...)
	for _, e := range edits {
		out = append(out[:e.at], append([]byte(newDir), out[e.at+e.n:]...)...)
	}
	return out, nil
}

// offset is the byte offset of s.node's value in src, past an opening
// quote. It refuses scalars whose source text differs from their value
// (escapes, line folding, block styles), which a splice could corrupt.
func offset(src []byte, s site) (int, error) {
	n := s.node
	at, ok := lineCol(src, n.Line, n.Column)
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	if ok && quoted {
		at++
	}
	end := at + len(n.Value)
	if !ok || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || end > len(src) || string(src[at:end]) != n.Value ||
		quoted && (end >= len(src) || src[end] != src[at-1]) {
		return 0, fmt.Errorf("%s %q at line %d of the etcd manifest is written in a form that cannot be edited in place: write it as a plain scalar, then retry", s.what, n.Value, n.Line)
	}
	return at, nil
}

// lineCol converts the parser's 1-based line and character column to a
// byte offset.
func lineCol(src []byte, line, col int) (int, bool) {
	at := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(src[at:], '\n')
		if i < 0 {
			return 0, false
		}
		at += i + 1
	}
	for c := 1; c < col; c++ {
		if at >= len(src) || src[at] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(src[at:])
		at += size
	}
	return at, true
}
