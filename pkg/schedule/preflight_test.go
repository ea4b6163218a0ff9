package schedule

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

func member(pod, listen string, tls discovery.TLSFiles) discovery.Member {
	return discovery.Member{Pod: pod, ListenClientURLs: strings.Split(listen, ","), Client: tls}
}

// The job runs on any control-plane node with one config: the etcd
// pods must agree on the URL a pod in the host's network reaches them
// at and on their client files.
func TestUseMembers(t *testing.T) {
	kubeadm := discovery.TLSFiles{CertFile: "/etc/kubernetes/pki/etcd/server.crt", KeyFile: "/etc/kubernetes/pki/etcd/server.key", TrustedCAFile: "/etc/kubernetes/pki/etcd/ca.crt"}
	moved := kubeadm
	moved.CertFile = "/etc/etcd/server.crt"
	for _, tc := range []struct {
		name    string
		members []discovery.Member
		want    string
	}{
		{"kubeadm's", []discovery.Member{member("etcd-cp1", "https://127.0.0.1:2379,https://10.0.0.1:2379", kubeadm), member("etcd-cp2", "https://127.0.0.1:2379,https://10.0.0.2:2379", kubeadm)}, ""},
		{"files that differ", []discovery.Member{member("etcd-cp1", "https://127.0.0.1:2379", kubeadm), member("etcd-cp2", "https://127.0.0.1:2379", moved)}, "etcd-cp2 has https://127.0.0.1:2379, --cert-file=/etc/etcd/server.crt"},
		{"ports that differ", []discovery.Member{member("etcd-cp1", "https://127.0.0.1:2379", kubeadm), member("etcd-cp2", "https://127.0.0.1:12379", kubeadm)}, "the etcd pods differ"},
		{"no client files", []discovery.Member{member("etcd-cp1", "https://127.0.0.1:2379", discovery.TLSFiles{})}, "names no client certificate"},
		{"no TLS", []discovery.Member{member("etcd-cp1", "http://127.0.0.1:2379", kubeadm)}, "without TLS"},
		{"no pods", nil, "no etcd pods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := c.UseMembers(tc.members)
			if tc.want == "" {
				if err != nil || c.Endpoint != "https://127.0.0.1:2379" || c.CertFile != kubeadm.CertFile || c.CAFile != kubeadm.TrustedCAFile {
					t.Errorf("%+v, %v", c, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// Preflight reads only whether the S3 Secret's keys are there; a
// missing Secret or namespace stops an install and is a warning in a
// dry run; a namespace that enforces a Pod Security level is said.
func TestPreflight(t *testing.T) {
	c := config("s3://backups/etcd")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.Namespace}}
	secret := func(data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: c.Dest.Secret, Namespace: c.Namespace}, Data: data}
	}
	both := map[string][]byte{EnvAccessKeyID: []byte("AKIA"), EnvSecretAccessKey: []byte("very-secret-value")}
	for _, tc := range []struct {
		name     string
		objs     []runtime.Object
		strict   bool
		wantErr  string
		wantWarn string
	}{
		{"all there", []runtime.Object{ns, secret(both)}, true, "", ""},
		{"no secret", []runtime.Object{ns}, true, "create it with the S3 credentials: kubectl -n etcd-backups create secret generic etcd-backup-s3", ""},
		{"no secret, dry", []runtime.Object{ns}, false, "", "secret etcd-backup-s3 is not in namespace etcd-backups"},
		{"a key missing", []runtime.Object{ns, secret(map[string][]byte{EnvAccessKeyID: []byte("AKIA")})}, false, "has no key AWS_SECRET_ACCESS_KEY", ""},
		{"an empty key", []runtime.Object{ns, secret(map[string][]byte{EnvAccessKeyID: nil, EnvSecretAccessKey: []byte("x")})}, true, "has no key AWS_ACCESS_KEY_ID, or it is empty", ""},
		{"no namespace", []runtime.Object{secret(both)}, true, "namespace etcd-backups does not exist", ""},
		{"a baseline namespace", []runtime.Object{secret(both), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.Namespace, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}}}}, true, "", "enforces the baseline Pod Security Standard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warnings, err := Preflight(context.Background(), fake.NewClientset(tc.objs...), c, tc.strict)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			w := strings.Join(warnings, "\n")
			if tc.wantWarn == "" && w != "" || !strings.Contains(w, tc.wantWarn) {
				t.Errorf("warnings %q, want %q", w, tc.wantWarn)
			}
			if err != nil && strings.Contains(err.Error(), "very-secret") || strings.Contains(w, "very-secret") {
				t.Errorf("a secret value printed: %v %q", err, w)
			}
		})
	}
	pvc := config("pvc:etcd-backups")
	warnings, err := Preflight(context.Background(), fake.NewClientset(ns), pvc, true)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "PersistentVolumeClaim etcd-backups is not in namespace etcd-backups") {
		t.Errorf("no PVC: %q, %v", warnings, err)
	}
}

// A schedule's settings are refused before anything is read from the
// cluster; ParseAge takes days.
func TestCheckSettings(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(*Config)
	}{
		{"fine", "", func(*Config) {}},
		{"a cron the controller refuses", "--schedule \"61 * * * *\"", func(c *Config) { c.Schedule = "61 * * * *" }},
		{"a time zone in the schedule", "five cron fields", func(c *Config) { c.Schedule = "TZ=Europe/Paris 0 2 * * *" }},
		{"no member files: settings only", "", func(c *Config) { c.CertFile = "" }},
		{"a negative count", "negative", func(c *Config) { c.Keep.Count = -1 }},
		{"an unknown destination", "want node, pvc or s3", func(c *Config) { c.Dest.Kind = "ftp" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config("node:/var/lib/etcd-backups")
			tc.edit(&c)
			err := c.CheckSettings()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	for in, want := range map[string]string{"30d": "720h0m0s", "36h": "36h0m0s", "90m": "1h30m0s", "0d": "error", "-1h": "error", "a week": "error", "1.5d": "error"} {
		d, err := ParseAge(in)
		got := d.String()
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParseAge(%q) = %s (%v), want %s", in, got, err, want)
		}
	}
}
