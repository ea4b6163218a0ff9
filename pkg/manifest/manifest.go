// Package manifest reads and edits an etcd static pod manifest as the kubelet
// finds it on disk. Edits splice single scalars into the original bytes, so
// that comments, key order, quoting and every other field survive: a diff of
// the input and the output shows the changed values and nothing else.
//
// It imports only the standard library and a YAML parser, because the node
// agent, which must stay a few MB, uses it.
package manifest

import (
	"cmp"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Member holds the etcd flags the node side needs, read from the manifest.
type Member struct {
	Name    string
	DataDir string
	// WALDir is --wal-dir, empty when the WAL is inside the data dir.
	WALDir string
	// RunAsUser is the uid the container runs as, when the manifest sets
	// one (the container's securityContext over the pod's).
	RunAsUser                *int64
	Image                    string
	InitialAdvertisePeerURLs []string
	ListenClientURLs         []string
	ListenPeerURLs           []string
	ListenMetricsURLs        []string
}

// pod is the parsed manifest with the nodes an edit needs.
type pod struct {
	src                []byte
	container          *yaml.Node
	volumes            *yaml.Node
	podSecurityContext *yaml.Node
}

func parse(src []byte) (*pod, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("the manifest is not valid YAML: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the manifest is not one YAML mapping: check that the file holds a single Pod")
	}
	spec := lookup(doc.Content[0], "spec")
	containers := lookup(spec, "containers")
	if containers == nil || containers.Kind != yaml.SequenceNode || len(containers.Content) == 0 {
		return nil, fmt.Errorf("the manifest has no spec.containers: is it a Pod manifest?")
	}
	if n := len(containers.Content); n != 1 {
		// Which container runs etcd would be a guess; kubeadm writes one.
		return nil, fmt.Errorf("the manifest has %d containers, and only kubeadm's single-container layout is supported: edit it by hand", n)
	}
	return &pod{src: src, container: containers.Content[0], volumes: lookup(spec, "volumes"), podSecurityContext: lookup(spec, "securityContext")}, nil
}

// lookup returns the value of key in a mapping node, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// argv is the container's command followed by its args, as scalar nodes.
func (p *pod) argv() []*yaml.Node {
	var out []*yaml.Node
	for _, key := range []string{"command", "args"} {
		seq := lookup(p.container, key)
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, n := range seq.Content {
			if n.Kind == yaml.ScalarNode {
				out = append(out, n)
			}
		}
	}
	return out
}

// flag returns every value of --name (both "--name=v" and "--name v").
func (p *pod) flag(name string) []string {
	var vals []string
	for _, s := range p.flagSites(name) {
		vals = append(vals, s.value)
	}
	return vals
}

// ReadMember reads the member flags from an etcd manifest. A flag given
// twice takes its last value, as etcd's flag parser does.
func ReadMember(src []byte) (*Member, error) {
	p, err := parse(src)
	if err != nil {
		return nil, err
	}
	last := func(name string) string {
		v := p.flag(name)
		if len(v) == 0 {
			return ""
		}
		return v[len(v)-1]
	}
	list := func(name string) []string {
		if v := last(name); v != "" {
			return strings.Split(v, ",")
		}
		return nil
	}
	m := &Member{
		Name:                     last("name"),
		WALDir:                   cmp.Or(last("wal-dir"), p.envValue("ETCD_WAL_DIR")),
		RunAsUser:                p.runAsUser(),
		Image:                    scalar(lookup(p.container, "image")),
		InitialAdvertisePeerURLs: list("initial-advertise-peer-urls"),
		ListenClientURLs:         list("listen-client-urls"),
		ListenPeerURLs:           list("listen-peer-urls"),
		ListenMetricsURLs:        list("listen-metrics-urls"),
	}
	sites, err := p.dataDirSites()
	if err != nil {
		return nil, err
	}
	m.DataDir = sites[0].value
	return m, nil
}

// envValue is the container's env var name, as etcd reads it when its
// flag is absent; a valueFrom counts as set ("valueFrom"), since only the
// kubelet knows its value.
func (p *pod) envValue(name string) string {
	env := lookup(p.container, "env")
	if env == nil || env.Kind != yaml.SequenceNode {
		return ""
	}
	out := ""
	for _, item := range env.Content {
		if scalar(lookup(item, "name")) != name {
			continue
		}
		if v := lookup(item, "value"); v != nil && v.Kind == yaml.ScalarNode {
			out = v.Value
		} else {
			out = "valueFrom"
		}
	}
	return out
}

// runAsUser is securityContext.runAsUser of the container, else of the
// pod; nil when neither sets one.
func (p *pod) runAsUser() *int64 {
	for _, sc := range []*yaml.Node{lookup(p.container, "securityContext"), p.podSecurityContext} {
		var uid int64
		if v := scalar(lookup(sc, "runAsUser")); v != "" {
			if _, err := fmt.Sscan(v, &uid); err == nil {
				return &uid
			}
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// Flag returns the last value of --name in a single-container static pod
// manifest (kube-apiserver's --secure-port, say), and whether it is set.
func Flag(src []byte, name string) (string, bool, error) {
	p, err := parse(src)
	if err != nil {
		return "", false, err
	}
	v := p.flag(name)
	if len(v) == 0 {
		return "", false, nil
	}
	return v[len(v)-1], true, nil
}
