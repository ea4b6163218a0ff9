package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

const testRecipient = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"

var scheduleNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// runSchedule runs kubectl etcd against a fake cluster of two kubeadm
// etcd pods, kube-system and objs.
func runSchedule(t *testing.T, cs *fake.Clientset, args ...string) (string, string, error) {
	t.Helper()
	t.Setenv(BackupImageEnv, "")
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := NewGlobalOptions(streams)
	g.Client, g.Now = cs, func() time.Time { return scheduleNow }
	cmd := NewCmdEtcdWithOptions(g)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func scheduleCluster(objs ...runtime.Object) *fake.Clientset {
	base := []runtime.Object{etcdPod("hc-cp1"), etcdPod("hc-cp2"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}}
	return fake.NewClientset(append(base, objs...)...)
}

var nightly = []string{"schedule", "backup", "nightly", "--schedule", "0 2 * * *", "--to", "node:/var/lib/etcd-backups", "--recipient", testRecipient}

func TestScheduleBackupRefusals(t *testing.T) {
	movedCert := etcdPod("hc-cp3")
	for i, a := range movedCert.Spec.Containers[0].Command {
		if strings.HasPrefix(a, "--cert-file=") {
			movedCert.Spec.Containers[0].Command[i] = "--cert-file=/etc/etcd/server.crt"
		}
	}
	oneKey := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "kube-system"}, Data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("AKIA")}}
	s3 := []string{"schedule", "backup", "hourly", "--schedule", "@hourly", "--to", "s3://backups/etcd", "--recipient", testRecipient}
	for _, tc := range []struct {
		name string
		objs []runtime.Object
		args []string
		want string
	}{
		{"no recipient", nil, nightly[:7], "keeps no key in the cluster: give --recipient age1... or --recipients-file FILE"},
		{"a bad recipient", nil, append(nightly[:7:7], "--recipient", "AGE-SECRET-KEY-1XYZ"), `--recipient "AGE-SECRET-KEY-1XYZ"`},
		{"a bad destination", nil, append(nightly[:5:5], "--to", "/var/lib/etcd-backups", "--recipient", testRecipient), "want node:/DIR, pvc:CLAIM or s3://BUCKET[/PREFIX]"},
		{"a bad name", nil, append([]string{"schedule", "backup", "Nightly!"}, nightly[3:]...), `schedule name "Nightly!"`},
		{"no schedule", nil, append([]string{"schedule", "backup", "nightly"}, nightly[5:]...), "--schedule is required"},
		{"a bad schedule", nil, append(nightly, "--schedule", "every night"), "five cron fields"},
		{"a bad age", nil, append(nightly, "--max-age", "a month"), `--max-age "a month"`},
		{"s3 without its secret", nil, s3, "an S3 destination needs --s3-secret"},
		{"s3 flags elsewhere", nil, append(nightly, "--s3-secret", "x"), "go with an s3:// destination"},
		{"a secret without a key", []runtime.Object{oneKey}, append(s3, "--s3-secret", "s3-creds"), "has no key AWS_SECRET_ACCESS_KEY"},
		{"no secret", nil, append(s3, "--s3-secret", "s3-creds"), "secret s3-creds is not in namespace kube-system"},
		{"pods that disagree", []runtime.Object{movedCert}, nightly, "the etcd pods differ in where a pod on their node reaches them"},
		{"-o without a dry run", nil, append(nightly, "-o", "yaml"), "add --dry-run=client"},
		{"a server dry run", nil, append(nightly, "--dry-run=server"), "--dry-run=server is not supported"},
		{"no such schedule to remove", nil, []string{"schedule", "backup", "nightly", "--uninstall"}, "no schedule nightly in namespace kube-system"},
		{"a run outside a pod", nil, []string{"schedule", "run", "--config", "/nonexistent/schedule.json"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := scheduleCluster(tc.objs...)
			_, _, err := runSchedule(t, cs, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
			if cjs, _ := cs.BatchV1().CronJobs("").List(context.Background(), metav1.ListOptions{}); len(cjs.Items) != 0 {
				t.Errorf("a refused schedule installed a CronJob")
			}
		})
	}
}

// --dry-run=client -o yaml prints what would be installed, for GitOps,
// and installs nothing; the default image is the plugin's own version.
func TestScheduleBackupDryRun(t *testing.T) {
	cs := scheduleCluster()
	out, errOut, err := runSchedule(t, cs, append(nightly, "--max-age", "30d", "--dry-run=client", "-o", "yaml")...)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "cmd-schedule-backup-dry-run", []byte(out))
	if !strings.Contains(errOut, "development build") {
		t.Errorf("no warning that the dev image is not published: %q", errOut)
	}
	if n := installed(cs, "nightly"); n != 0 {
		t.Errorf("a dry run installed %d objects", n)
	}
	out, _, err = runSchedule(t, cs, append(nightly, "--dry-run", "-o", "json", "--backup-image", "mirror.example/kubectl-etcd:v1")...)
	if err != nil || !strings.Contains(out, `"kind": "List"`) || !strings.Contains(out, `"image": "mirror.example/kubectl-etcd:v1"`) {
		t.Errorf("-o json: %v\n%s", err, out)
	}
}

// An install prints one line per object as kubectl does and says when
// the schedule runs next; a second one updates; --uninstall removes
// only this schedule's objects and says the backups stay.
func TestScheduleBackupInstall(t *testing.T) {
	cs := scheduleCluster()
	out, errOut, err := runSchedule(t, cs, append(nightly, "--backup-image", "mirror.example/kubectl-etcd:v1")...)
	if err != nil {
		t.Fatal(err)
	}
	want := `configmap/kubectl-etcd-backup-nightly created
serviceaccount/kubectl-etcd-backup-nightly created
role.rbac.authorization.k8s.io/kubectl-etcd-backup-nightly created
rolebinding.rbac.authorization.k8s.io/kubectl-etcd-backup-nightly created
lease.coordination.k8s.io/kubectl-etcd-backup-nightly created
cronjob.batch/kubectl-etcd-backup-nightly created
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant\n%s", out, want)
	}
	if !strings.Contains(errOut, "next at 2026-12-08 02:00 UTC (in 14h)") || !strings.Contains(errOut, "kubectl etcd schedule list --schedule-namespace kube-system") {
		t.Errorf("stderr: %q", errOut)
	}
	out, _, err = runSchedule(t, cs, append(nightly, "--keep", "3")...)
	if err != nil || !strings.Contains(out, "cronjob.batch/kubectl-etcd-backup-nightly configured") || !strings.Contains(out, "lease.coordination.k8s.io/kubectl-etcd-backup-nightly unchanged") {
		t.Errorf("a second install: %v\n%s", err, out)
	}
	weekly := append([]string{"schedule", "backup", "weekly"}, nightly[3:]...)
	if _, _, err := runSchedule(t, cs, weekly...); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = runSchedule(t, cs, "schedule", "backup", "nightly", "--uninstall")
	if err != nil || strings.Count(out, " deleted\n") != 6 || strings.Contains(out, "weekly") {
		t.Errorf("uninstall: %v\n%s", err, out)
	}
	if !strings.Contains(errOut, "stay in node:/var/lib/etcd-backups (on the control-plane node that ran it)") {
		t.Errorf("uninstall says: %q", errOut)
	}
	if n, w := installed(cs, "nightly"), installed(cs, "weekly"); n != 0 || w != 6 {
		t.Errorf("nightly's objects left: %d, weekly's: %d, want 0 and 6", n, w)
	}
}

// schedule list reads the CronJobs, configs and records of every
// namespace, or of one.
func TestScheduleList(t *testing.T) {
	cs := scheduleCluster(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "etcd-backups"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "etcd-backups"},
			Data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("a"), "AWS_SECRET_ACCESS_KEY": []byte("b")}})
	if _, errOut, err := runSchedule(t, cs, append(nightly, "--backup-image", "mirror.example/kubectl-etcd:v1")...); err != nil {
		t.Fatal(err, errOut)
	}
	if _, errOut, err := runSchedule(t, cs, "schedule", "backup", "hourly", "--schedule", "@hourly", "--to", "s3://backups/etcd", "--s3-secret", "s3-creds",
		"--max-age", "14d", "--schedule-namespace", "etcd-backups", "--recipient", testRecipient, "--backup-image", "mirror.example/kubectl-etcd:v1"); err != nil {
		t.Fatal(err, errOut)
	}
	leases := cs.CoordinationV1().Leases("kube-system")
	took := scheduleNow.Add(-10 * time.Hour)
	if err := schedule.WriteRecord(context.Background(), leases, "kube-system", "kubectl-etcd-backup-nightly", schedule.Outcome{Time: took, File: schedule.FileName("nightly", took),
		Size: 21 << 20, Revision: 4242, SHA256: "cd34", Took: "1.2s", Kept: []schedule.Object{{Name: schedule.FileName("nightly", took), Size: 5 << 20}}}); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"cmd-schedule-list":      {"schedule", "list"},
		"cmd-schedule-list-wide": {"schedule", "list", "--schedule-namespace", "kube-system", "-o", "wide"},
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := runSchedule(t, cs, args...)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, name, []byte(out))
		})
	}
	_, errOut, err := runSchedule(t, cs, "schedule", "list", "--schedule-namespace", "default")
	if err != nil || !strings.Contains(errOut, "No schedules installed") {
		t.Errorf("no schedules: %v, %q", err, errOut)
	}
}

// installed counts schedule name's objects in kube-system, as an
// uninstall would find them.
func installed(cs kubernetes.Interface, name string) int {
	r, _ := schedule.Uninstall(context.Background(), cs, "kube-system", name, true)
	return len(r.Refs)
}
