package doctor

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/encryptionconfig"
)

// encConfig is encryptionconfig's fixture: two aescbc keys for secrets
// and configmaps, kms for the rest.
func encConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../encryptionconfig/testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStoredAs(t *testing.T) {
	for in, want := range map[string]string{
		"k8s:enc:aescbc:v1:key1:\x01\x02":     "aescbc:key1",
		"k8s:enc:secretbox:v1:k:xx":           "secretbox:k",
		"k8s:enc:kms:v2:vault:\x0a\x0b":       "kms:v2:vault",
		"\x6b\x38\x73\x00\x0a\x0c{}":          "",
		`{"kind":"Secret","apiVersion":"v1"}`: "",
		"k8s:enc:x":                           "unknown",
	} {
		if got := storedAs([]byte(in)); got != want {
			t.Errorf("storedAs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEncryptionRule(t *testing.T) {
	cfg, err := encryptionconfig.Parse([]byte(encConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	rotated, _ := encryptionconfig.Parse([]byte(strings.Replace(encConfig(t), "            - name: key1\n              secret: Zmlyc3Qga2V5IHNlY3JldCBvZiAzMiBieXRlcyEhIQ==\n", "", 1)))
	other, _ := encryptionconfig.Parse([]byte(strings.Replace(encConfig(t), "Zmlyc3Qga2V5", "b3RoZXIga2V5", 1)))
	servers := func(path string) []discovery.APIServer {
		return []discovery.APIServer{{Node: "cp1", EncryptionConfig: path}, {Node: "cp2", EncryptionConfig: path}}
	}
	enc := func(edit func(e *EncryptionFacts)) func(f *Facts) {
		return func(f *Facts) {
			e := &EncryptionFacts{Servers: servers("/etc/kubernetes/enc.yaml"), Configs: map[string]*encryptionconfig.Config{"cp1": cfg, "cp2": cfg}, ConfigErrs: map[string]error{},
				Stored: map[string]map[string]int{"secrets": {"aescbc:key1": 10, "aescbc:key2": 2}, "configmaps": {"aescbc:key2": 4}}}
			if edit != nil {
				edit(e)
			}
			f.Encryption = e
		}
	}
	runCases(t, "3.6.8", []ruleCase{
		{name: "every key on every node", id: "security.encryption", edit: enc(nil), want: map[string]Severity{"cluster": OK}, found: "secrets: 10 aescbc:key1, 2 aescbc:key2"},
		{name: "a key rotated away on one node", id: "security.encryption", edit: enc(func(e *EncryptionFacts) { e.Configs["cp2"] = rotated }),
			want: map[string]Severity{"cluster": Fail}, found: "10 secrets are stored with aescbc:key1, which node cp2's encryption config lacks"},
		{name: "one key name, two secrets", id: "security.encryption", edit: enc(func(e *EncryptionFacts) { e.Configs["cp2"] = other }),
			want: map[string]Severity{"cluster": Fail}, found: "key aescbc:key1 differs between the nodes"},
		{name: "plain Secrets left", id: "security.encryption", edit: enc(func(e *EncryptionFacts) {
			e.Stored["secrets"][""] = 3
			e.PlainExamples = map[string][]string{"secrets": {"default/a", "default/b"}}
		}), want: map[string]Severity{"cluster": Warn}, found: "3 secrets are still stored in plain text (default/a, default/b ...)"},
		{name: "no encryption at rest", id: "security.encryption", edit: enc(func(e *EncryptionFacts) {
			e.Servers, e.Configs, e.Stored = servers(""), nil, map[string]map[string]int{"secrets": {"": 7}}
		}), want: map[string]Severity{"cluster": Warn}, found: "7 Secrets are plain text"},
		{name: "one API server without the config", id: "security.encryption", edit: enc(func(e *EncryptionFacts) {
			e.Servers[1].EncryptionConfig = ""
			delete(e.Configs, "cp2")
		}), want: map[string]Severity{"cluster": Fail}, found: "the API servers on cp2 have no --encryption-provider-config"},
		{name: "a config that cannot be read", id: "security.encryption", edit: enc(func(e *EncryptionFacts) {
			delete(e.Configs, "cp2")
			e.ConfigErrs["cp2"] = errors.New("node cp2 is NotReady")
		}), want: map[string]Severity{"cluster": NotChecked}, found: "NotReady"},
		{name: "the API servers not listed", id: "security.encryption", edit: enc(func(e *EncryptionFacts) { e.ServersErr = errors.New("pods is forbidden") }),
			want: map[string]Severity{"cluster": NotChecked}},
	})
}
