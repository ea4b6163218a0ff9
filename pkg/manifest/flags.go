package manifest

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// SetFlags sets etcd flags in the manifest: each --name's every value
// becomes v, and a flag the command lacks is added after its last item,
// indented as that item is (kubeadm writes one "- --name=value" line per
// flag). Every other byte is kept. Flags are taken in name order, so the
// output is the same for the same input.
func SetFlags(src []byte, flags map[string]string) ([]byte, error) {
	p, err := parse(src)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(flags))
	for n, v := range flags {
		if err := checkFlagValue(n, v); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	sort.Strings(names)
	type edit struct {
		at, n int
		text  string
	}
	var edits []edit
	var added []string
	for _, name := range names {
		sites := p.flagSites(name)
		if len(sites) == 0 {
			added = append(added, "--"+name+"="+flags[name])
			continue
		}
		for _, s := range sites {
			at, err := offset(src, s)
			if err != nil {
				return nil, err
			}
			edits = append(edits, edit{at + s.prefix, len(s.value), flags[name]})
		}
	}
	if len(added) > 0 {
		cmd := lookup(p.container, "command")
		if cmd == nil || cmd.Kind != yaml.SequenceNode || len(cmd.Content) == 0 || cmd.Style&yaml.FlowStyle != 0 {
			return nil, fmt.Errorf("the etcd manifest's command is not a block list (- item per line): add %s by hand", strings.Join(added, " "))
		}
		last := cmd.Content[len(cmd.Content)-1]
		start, ok := lineCol(src, last.Line, 1)
		if !ok {
			return nil, fmt.Errorf("cannot find the etcd manifest's last command item")
		}
		end := bytes.IndexByte(src[start:], '\n')
		if end < 0 || last.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return nil, fmt.Errorf("the etcd manifest's last command item %q is not on a line of its own: add %s by hand", last.Value, strings.Join(added, " "))
		}
		line := src[start : start+end]
		dash := bytes.Index(line, []byte("- "))
		if dash < 0 || strings.TrimSpace(string(line[:dash])) != "" {
			return nil, fmt.Errorf("the etcd manifest's command items are not written \"- item\" one per line: add %s by hand", strings.Join(added, " "))
		}
		var text strings.Builder
		for _, a := range added {
			text.WriteString(string(line[:dash+2]) + a + "\n")
		}
		edits = append(edits, edit{start + end + 1, 0, text.String()})
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].at > edits[j].at })
	out := append([]byte{}, src...)
	for _, e := range edits {
		out = append(out[:e.at], append([]byte(e.text), out[e.at+e.n:]...)...)
	}
	if _, err := parse(out); err != nil {
		return nil, fmt.Errorf("setting %s broke the manifest: %w", strings.Join(names, ", "), err)
	}
	return out, nil
}

// checkFlagValue keeps to what a plain YAML scalar in a block list and a
// shell both take as it is: names, URLs, host:port lists.
func checkFlagValue(name, v string) error {
	for _, r := range name + v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-=:,[]%@", r)) {
			return fmt.Errorf("--%s=%s has %q; only letters, digits and / . _ - = : , [ ] %% @ are written into a manifest", name, v, r)
		}
	}
	if v == "" || strings.HasPrefix(v, "-") {
		return fmt.Errorf("--%s needs a value that does not start with -", name)
	}
	return nil
}

// SetAnnotation sets metadata.annotations[key] to value, replacing its
// value or adding a line after the last annotation, indented as that one
// (kubeadm writes one annotation, the etcd advertise URL). A changed
// manifest gives the static pod a new UID, so the kubelet starts it
// afresh, without the restart back-off of the pod it replaces.
func SetAnnotation(src []byte, key, value string) ([]byte, error) {
	if err := checkFlagValue(key, value); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil || len(doc.Content) != 1 {
		return nil, fmt.Errorf("the manifest is not one YAML document: %v", err)
	}
	ann := lookup(lookup(doc.Content[0], "metadata"), "annotations")
	if ann == nil || ann.Kind != yaml.MappingNode || len(ann.Content) == 0 || ann.Style&yaml.FlowStyle != 0 {
		return nil, fmt.Errorf("the etcd manifest has no block metadata.annotations (kubeadm writes one): add %s: %q by hand", key, value)
	}
	if v := lookup(ann, key); v != nil {
		at, err := offset(src, site{node: v, value: v.Value, what: "annotation " + key})
		if err != nil {
			return nil, err
		}
		out := append([]byte{}, src[:at]...)
		out = append(append(out, value...), src[at+len(v.Value):]...)
		return out, nil
	}
	lastKey, lastVal := ann.Content[len(ann.Content)-2], ann.Content[len(ann.Content)-1]
	if lastVal.Kind != yaml.ScalarNode || lastVal.Line != lastKey.Line || lastVal.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return nil, fmt.Errorf("the etcd manifest's last annotation %s is not on a line of its own: add %s: %q by hand", lastKey.Value, key, value)
	}
	start, ok := lineCol(src, lastKey.Line, 1)
	if !ok {
		return nil, fmt.Errorf("cannot find the etcd manifest's annotations")
	}
	end := bytes.IndexByte(src[start:], '\n')
	if end < 0 {
		return nil, fmt.Errorf("the etcd manifest ends inside its annotations")
	}
	indent := strings.Repeat(" ", lastKey.Column-1)
	line := indent + key + ": " + value + "\n"
	out := append([]byte{}, src[:start+end+1]...)
	out = append(append(out, line...), src[start+end+1:]...)
	if _, err := parse(out); err != nil {
		return nil, fmt.Errorf("setting annotation %s broke the manifest: %w", key, err)
	}
	return out, nil
}
