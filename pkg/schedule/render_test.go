package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
)

func config(to string) Config {
	d, _ := ParseDest(to)
	if d.Kind == DestS3 {
		d.Endpoint, d.Secret = "http://10.0.0.9:7070", "etcd-backup-s3"
	}
	return Config{Name: "nightly", Namespace: "etcd-backups", Schedule: "0 2 * * *",
		Recipients: []string{"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"},
		Dest:       d, Keep: Rule{Count: 7, MaxAge: 30 * 24 * time.Hour}, Image: "kubectl-etcd:1",
		Endpoint: "https://127.0.0.1:2379", CertFile: "/etc/kubernetes/pki/etcd/server.crt", KeyFile: "/etc/kubernetes/pki/etcd/server.key", CAFile: "/etc/kubernetes/pki/etcd/ca.crt"}
}

// What a schedule installs, per destination, as the golden files show:
// its config, a service account that may touch only its own Lease, and
// a CronJob on a control-plane node that mounts etcd's client files one
// by one, read-only, unprivileged.
func TestRender(t *testing.T) {
	for name, to := range map[string]string{"node": "node:/var/lib/etcd-backups", "pvc": "pvc:etcd-backups", "s3": "s3://backups/etcd/prod"} {
		t.Run(name, func(t *testing.T) {
			objs, err := Render(config(to))
			if err != nil {
				t.Fatal(err)
			}
			b, err := YAML(objs)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "schedule-"+name, b)
			out := string(b)
			if strings.Contains(out, "privileged: true") || strings.Count(out, "app.kubernetes.io/managed-by: kubectl-etcd") < 6 || strings.Contains(out, "AGE-SECRET-KEY") {
				t.Errorf("not least privilege, not labelled, or a key in the cluster:\n%s", out)
			}
		})
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		edit       func(*Config)
	}{
		{"no recipient", "keeps no key in the cluster", func(c *Config) { c.Recipients = nil }},
		{"a bad schedule", "five cron fields", func(c *Config) { c.Schedule = "every night" }},
		{"s3 without a secret", "--s3-secret", func(c *Config) { c.Dest = Dest{Kind: DestS3, Bucket: "b"} }},
		{"a bad name", "schedule name", func(c *Config) { c.Name = "Nightly!" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := config("node:/var/lib/etcd-backups")
			tt.edit(&c)
			if _, err := Render(c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestParseDest(t *testing.T) {
	for in, want := range map[string]string{
		"node:/var/lib/etcd-backups": "node:/var/lib/etcd-backups (on the control-plane node that ran it)",
		"pvc:etcd-backups":           "pvc:etcd-backups",
		"s3://backups":               "s3://backups/",
		"s3://backups/etcd/prod/":    "s3://backups/etcd/prod/",
		"node:relative":              "error",
		"node:/":                     "error",
		"pvc:":                       "error",
		"/var/lib/x":                 "error",
		"s3://":                      "error",
	} {
		d, err := ParseDest(in)
		got := d.String()
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%s: %q (%v), want %q", in, got, err, want)
		}
	}
}
