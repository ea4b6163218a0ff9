package encryptionconfig

import (
	"os"
	"strings"
	"testing"
)

// config is the fixture the doctor's tests read too.
func config(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParse(t *testing.T) {
	c, err := Parse([]byte(config(t)))
	if err != nil {
		t.Fatal(err)
	}
	e := c.EntryFor("secrets")
	if !e.Encrypts() || len(e.Providers) != 2 || e.Providers[0].Type != "aescbc" || len(e.Providers[0].Keys) != 2 {
		t.Fatalf("secrets' entry: %+v", e)
	}
	k, ok := e.Holds("aescbc:key1")
	if !ok || k.Hash == "" || strings.Contains(k.Hash, "Zmlyc3Q") {
		t.Errorf("key1: %+v %v", k, ok)
	}
	if _, ok := e.Holds("secretbox:key1"); ok {
		t.Error("secretbox:key1 held by an aescbc entry")
	}
	if k, ok := c.EntryFor("leases").Holds("kms:v2:vault"); !ok || k.Hash != "" {
		t.Errorf("kms through *.*: %+v %v", k, ok)
	}
	for _, bad := range []string{"kind: Pod", "{{{"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestNames(t *testing.T) {
	c, err := Parse([]byte(config(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Names(), " "); got != "aescbc:key2 aescbc:key1 kms:v2:vault" {
		t.Errorf("names %q", got)
	}
}
