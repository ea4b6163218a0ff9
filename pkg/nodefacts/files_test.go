package nodefacts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// statExec answers stat -c %a like busybox, and cat from catExec.
type statExec struct {
	catExec
	modes map[string]string
}

func (s *statExec) Exec(ctx context.Context, ref exec.PodRef, cmd []string, in io.Reader, stdout, stderr io.Writer) error {
	if len(cmd) == 4 && cmd[0] == "stat" && cmd[1] == "-c" && cmd[2] == "%a" {
		mode, ok := s.modes[strings.TrimPrefix(cmd[3], nodepod.HostPrefix)]
		if !ok {
			fmt.Fprintf(stderr, "stat: can't stat '%s': No such file or directory", cmd[3])
			return fmt.Errorf("command terminated with exit code 1")
		}
		fmt.Fprintln(stdout, mode)
		return nil
	}
	return s.catExec.Exec(ctx, ref, cmd, in, stdout, stderr)
}

func TestNodeFilesRead(t *testing.T) {
	cert, _ := selfSigned(t)
	cs, created := nodeCluster(t)
	ex := &statExec{catExec: catExec{files: map[string][]byte{caFile: cert, certFile: cert}}, modes: map[string]string{"/var/lib/etcd": "700"}}
	n := &NodeFiles{Runner: &nodepod.Runner{Client: cs, Exec: ex, StartTimeout: 5 * time.Second}, Namespace: "kube-system"}
	rep, err := n.Read(context.Background(), "n1", []string{caFile, certFile, "/etc/kubernetes/pki/etcd/peer.crt"}, []string{"/var/lib/etcd", "/var/lib/other"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rep.Files[caFile], cert) || !bytes.Equal(rep.Files[certFile], cert) || rep.FileErrs["/etc/kubernetes/pki/etcd/peer.crt"] == nil {
		t.Errorf("files %v errors %v", rep.Files, rep.FileErrs)
	}
	if rep.Modes["/var/lib/etcd"] != "700" || rep.ModeErrs["/var/lib/other"] == nil {
		t.Errorf("modes %v errors %v", rep.Modes, rep.ModeErrs)
	}
	if len(*created) != 1 {
		t.Fatalf("%d pods, want one for the node", len(*created))
	}
	pod := (*created)[0]
	for i, v := range pod.Spec.Volumes {
		want := corev1.HostPathFile
		if strings.HasPrefix(v.HostPath.Path, "/var/lib/") {
			want = corev1.HostPathDirectory
		}
		if *v.HostPath.Type != want || !pod.Spec.Containers[0].VolumeMounts[i].ReadOnly {
			t.Errorf("volume %s: %+v", v.Name, v.HostPath)
		}
	}
	if sc := pod.Spec.Containers[0].SecurityContext; sc == nil || *sc.Privileged || !*sc.ReadOnlyRootFilesystem {
		t.Error("the node pod is not the narrow ProfileFiles one")
	}
	for _, c := range ex.cmds {
		if strings.HasSuffix(c[len(c)-1], ".key") {
			t.Errorf("a key was read: %v", c)
		}
	}
}
