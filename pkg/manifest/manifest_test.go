package manifest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const newDir = "/var/lib/etcd-restore-20260102T030405Z"

// inputs are kubeadm etcd manifests; see testdata/README.md for their origin.
var inputs = []string{"kubeadm-v1.33.13-etcd-3.5.35.yaml", "kubeadm-v1.37.1-etcd-3.7.0.yaml"}

func TestSetDataDirGolden(t *testing.T) {
	for _, name := range inputs {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			out, old, err := SetDataDir(in, newDir)
			if err != nil {
				t.Fatal(err)
			}
			if old != "/var/lib/etcd" {
				t.Errorf("old = %q, want /var/lib/etcd", old)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".yaml")+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(string(want), string(out)); d != "" {
				t.Errorf("rewrite differs from %s (-want +got):\n%s", golden, d)
			}
			assertChangedLines(t, in, out, []string{
				"    - --data-dir=" + newDir,
				"    - mountPath: " + newDir,
				"      path: " + newDir,
			})
			m, err := ReadMember(out)
			if err != nil || m.DataDir != newDir {
				t.Errorf("ReadMember(rewritten) = %+v, %v; want data dir %s", m, err, newDir)
			}
		})
	}
}

// assertChangedLines checks that in and out have the same line count and
// differ in exactly the lines given, in order.
func assertChangedLines(t *testing.T, in, out []byte, want []string) {
	t.Helper()
	a, b := strings.Split(string(in), "\n"), strings.Split(string(out), "\n")
	if len(a) != len(b) {
		t.Fatalf("line count changed: %d -> %d", len(a), len(b))
	}
	var got []string
	for i := range a {
		if a[i] != b[i] {
			got = append(got, b[i])
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("changed lines (-want +got):\n%s", d)
	}
}

func TestReadMember(t *testing.T) {
	for _, name := range inputs {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ReadMember(in)
			if err != nil {
				t.Fatal(err)
			}
			want := &Member{
				Name:                     "hc-cp1",
				DataDir:                  "/var/lib/etcd",
				Image:                    m.Image,
				InitialAdvertisePeerURLs: []string{"https://10.250.1.11:2380"},
				ListenClientURLs:         []string{"https://127.0.0.1:2379", "https://10.250.1.11:2379"},
				ListenPeerURLs:           []string{"https://10.250.1.11:2380"},
				ListenMetricsURLs:        []string{"http://127.0.0.1:2381"},
			}
			if d := cmp.Diff(want, m); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if !strings.HasPrefix(m.Image, "registry.k8s.io/etcd:3.") {
				t.Errorf("image = %q", m.Image)
			}
		})
	}
}

// etcd reads ETCD_WAL_DIR when --wal-dir is absent: a restore must see
// either (D3).
func TestReadMemberWALDir(t *testing.T) {
	base := "  - command:\n    - etcd\n    - --name=m\n    - --data-dir=/var/lib/etcd\n%s" + dataMount
	for _, tt := range []struct{ name, extra, want string }{
		{"none", "", ""},
		{"flag", "    - --wal-dir=/wal\n", "/wal"},
		{"env", "    env:\n    - name: ETCD_WAL_DIR\n      value: /envwal\n", "/envwal"},
		{"env from elsewhere", "    env:\n    - name: ETCD_WAL_DIR\n      valueFrom:\n        configMapKeyRef: {name: x, key: y}\n", "valueFrom"},
		{"flag wins", "    - --wal-dir=/wal\n    env:\n    - name: ETCD_WAL_DIR\n      value: /envwal\n", "/wal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadMember([]byte(podYAML(fmt.Sprintf(base, tt.extra), dataVolume)))
			if err != nil {
				t.Fatal(err)
			}
			if m.WALDir != tt.want {
				t.Errorf("WALDir = %q, want %q", m.WALDir, tt.want)
			}
		})
	}
}

// podYAML builds a small manifest around a container body.
func podYAML(container, volumes string) string {
	return "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n" + container + "  volumes:\n" + volumes
}

const (
	dataVolume = "  - hostPath:\n      path: /var/lib/etcd\n    name: etcd-data\n"
	dataMount  = "    volumeMounts:\n    - mountPath: /var/lib/etcd\n      name: etcd-data\n"
)

func TestSetDataDirForms(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{{
		name: "separate value",
		in:   podYAML("  - command:\n    - etcd\n    - --data-dir\n    - /var/lib/etcd\n"+dataMount, dataVolume),
		want: podYAML("  - command:\n    - etcd\n    - --data-dir\n    - "+newDir+"\n"+strings.ReplaceAll(dataMount, "/var/lib/etcd", newDir), strings.ReplaceAll(dataVolume, "/var/lib/etcd", newDir)),
	}, {
		name: "quoted, in args, single dash",
		in:   podYAML("  - command: [etcd]\n    args: [\"-data-dir=/var/lib/etcd\"] # kept\n"+dataMount, "  - hostPath: {path: '/var/lib/etcd'}\n    name: etcd-data\n"),
		want: podYAML("  - command: [etcd]\n    args: [\"-data-dir="+newDir+"\"] # kept\n"+strings.ReplaceAll(dataMount, "/var/lib/etcd", newDir), "  - hostPath: {path: '"+newDir+"'}\n    name: etcd-data\n"),
	}, {
		name: "env only, trailing slash on the mount",
		in:   podYAML("  - command: [etcd]\n    env:\n    - name: ETCD_DATA_DIR\n      value: /var/lib/etcd\n    volumeMounts:\n    - mountPath: /var/lib/etcd/\n      name: etcd-data\n", dataVolume),
		want: podYAML("  - command: [etcd]\n    env:\n    - name: ETCD_DATA_DIR\n      value: "+newDir+"\n    volumeMounts:\n    - mountPath: "+newDir+"\n      name: etcd-data\n", strings.ReplaceAll(dataVolume, "/var/lib/etcd", newDir)),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, old, err := SetDataDir([]byte(tt.in), newDir)
			if err != nil {
				t.Fatal(err)
			}
			if old != "/var/lib/etcd" {
				t.Errorf("old = %q", old)
			}
			if d := cmp.Diff(tt.want, string(out)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestSetDataDirErrors(t *testing.T) {
	cmd := "  - command:\n    - etcd\n    - --data-dir=/var/lib/etcd\n"
	tests := []struct {
		name, in, dir, want string
	}{
		{"no data dir", podYAML("  - command: [etcd]\n"+dataMount, dataVolume), newDir, "sets no --data-dir"},
		{"no mount", podYAML(cmd, dataVolume), newDir, "no volume is mounted at the data dir"},
		{"volume missing", podYAML(cmd+dataMount, "  - name: other\n    emptyDir: {}\n"), newDir, "does not define"},
		{"not hostPath", podYAML(cmd+dataMount, "  - name: etcd-data\n    emptyDir: {}\n"), newDir, "not a hostPath volume"},
		{"hostPath elsewhere", podYAML(cmd+dataMount, "  - hostPath:\n      path: /data/etcd\n    name: etcd-data\n"), newDir, "only kubeadm's layout"},
		{"two containers", podYAML(cmd+dataMount+"  - name: sidecar\n", dataVolume), newDir, "has 2 containers"},
		{"flag and env disagree", podYAML(cmd+"    env:\n    - name: ETCD_DATA_DIR\n      value: /other\n"+dataMount, dataVolume), newDir, "names two data dirs"},
		{"relative", podYAML(cmd+dataMount, dataVolume), "var/lib/etcd-new", "clean absolute path"},
		{"unclean", podYAML(cmd+dataMount, dataVolume), "/var/lib/../etcd-new", "clean absolute path"},
		{"odd character", podYAML(cmd+dataMount, dataVolume), "/var/lib/etcd new", "use only letters"},
		{"same", podYAML(cmd+dataMount, dataVolume), "/var/lib/etcd", "is the current one"},
		{"nested", podYAML(cmd+dataMount, dataVolume), "/var/lib/etcd/restore", "are nested"},
		{"escaped scalar", podYAML("  - command:\n    - etcd\n    - \"--data-dir=/var/lib/\\x65tcd\"\n"+dataMount, dataVolume), newDir, "cannot be edited in place"},
		{"not yaml", "spec: [", newDir, "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := SetDataDir([]byte(tt.in), tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFlag(t *testing.T) {
	src := []byte(podYAML("  - command:\n    - kube-apiserver\n    - --secure-port=6443\n    - --bind-address\n    - 10.0.0.1\n    - --secure-port=7443\n", ""))
	for _, tt := range []struct {
		name, want string
		set        bool
	}{
		{"secure-port", "7443", true},
		{"bind-address", "10.0.0.1", true},
		{"etcd-servers", "", false},
	} {
		got, set, err := Flag(src, tt.name)
		if err != nil || got != tt.want || set != tt.set {
			t.Errorf("Flag(%s) = %q, %v, %v; want %q, %v", tt.name, got, set, err, tt.want, tt.set)
		}
	}
	if _, _, err := Flag([]byte("spec: ["), "x"); err == nil {
		t.Error("invalid YAML accepted")
	}
}
