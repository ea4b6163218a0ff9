// Package encryptionconfig reads the kube-apiserver's EncryptionConfiguration
// (--encryption-provider-config) as far as telling which keys it holds:
// each key's name and a hash of its secret, never the secret.
package encryptionconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Config is an EncryptionConfiguration with each key's secret
// replaced by its sha256.
type Config struct {
	Resources []Entry
}

// Entry is one resources entry: the providers in order.
type Entry struct {
	Resources []string
	Providers []Provider
}

// Provider is one provider and the keys it holds.
type Provider struct {
	Type string // aescbc, aesgcm, secretbox, kms, identity
	// Keys are key names (kms: its name, with the API version), each with
	// the sha256 of its secret.
	Keys []Key
}

// Key is a key's name and the sha256 of its secret, never the
// secret.
type Key struct {
	Name, Hash string
}

// Parse reads an EncryptionConfiguration, keeping of each
// secret only its sha256.
func Parse(b []byte) (*Config, error) {
	var raw struct {
		Kind      string `json:"kind"`
		Resources []struct {
			Resources []string                `json:"resources"`
			Providers []map[string]rawMessage `json:"providers"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not an EncryptionConfiguration: %w", err)
	}
	if raw.Kind != "EncryptionConfiguration" {
		return nil, fmt.Errorf("kind %q, not EncryptionConfiguration", raw.Kind)
	}
	out := &Config{}
	for _, r := range raw.Resources {
		e := Entry{Resources: r.Resources}
		for _, p := range r.Providers {
			for typ, body := range p {
				var spec struct {
					Name       string `json:"name"`
					APIVersion string `json:"apiVersion"`
					Keys       []struct {
						Name   string `json:"name"`
						Secret string `json:"secret"`
					} `json:"keys"`
				}
				if err := yaml.Unmarshal(body, &spec); err != nil {
					return nil, fmt.Errorf("provider %s: %w", typ, err)
				}
				pr := Provider{Type: typ}
				for _, k := range spec.Keys {
					sum := sha256.Sum256([]byte(k.Secret))
					pr.Keys = append(pr.Keys, Key{Name: k.Name, Hash: hex.EncodeToString(sum[:8])})
				}
				if typ == "kms" {
					v := spec.APIVersion
					if v == "" {
						v = "v1"
					}
					pr.Keys = append(pr.Keys, Key{Name: v + ":" + spec.Name})
				}
				e.Providers = append(e.Providers, pr)
			}
		}
		out.Resources = append(out.Resources, e)
	}
	return out, nil
}

// rawMessage keeps a provider's body for a second decode.
type rawMessage []byte

func (m *rawMessage) UnmarshalJSON(b []byte) error { *m = append((*m)[:0], b...); return nil }

// EntryFor is the config's entry for resource ("secrets"): an exact name
// first, then the wildcards that cover it.
func (c *Config) EntryFor(resource string) *Entry {
	for _, want := range []string{resource, "*.", "*.*"} {
		for i, e := range c.Resources {
			for _, r := range e.Resources {
				if r == want {
					return &c.Resources[i]
				}
			}
		}
	}
	return nil
}

// Holds is the key named by stored ("aescbc:key1"), when the entry has it.
func (e *Entry) Holds(stored string) (Key, bool) {
	typ, name, _ := strings.Cut(stored, ":")
	for _, p := range e.Providers {
		if p.Type != typ {
			continue
		}
		for _, k := range p.Keys {
			if k.Name == name {
				return k, true
			}
		}
	}
	return Key{}, false
}

// Encrypts says whether the entry writes encrypted values.
func (e *Entry) Encrypts() bool {
	return e != nil && len(e.Providers) > 0 && e.Providers[0].Type != "identity"
}

// Names lists the config's key names, as stored values name them
// ("aescbc:key1", "kms:v2:vault"), each once.
func (c *Config) Names() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range c.Resources {
		for _, p := range e.Providers {
			for _, k := range p.Keys {
				n := p.Type + ":" + k.Name
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
	}
	return out
}
