package schedule

import (
	"context"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

func rendered(t *testing.T, c Config) []runtime.Object {
	t.Helper()
	objs, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func applied(as []Applied) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return strings.Join(s, "\n")
}

// An install creates the schedule's objects in order; a second one
// updates them and leaves the Lease, with its record, as it is; an
// object of the same name that is not the schedule's is refused.
func TestInstall(t *testing.T) {
	ctx := context.Background()
	c := config("node:/var/lib/etcd-backups")
	cs := fake.NewClientset()
	got, err := Install(ctx, cs, rendered(t, c))
	want := `configmap/kubectl-etcd-backup-nightly created
serviceaccount/kubectl-etcd-backup-nightly created
role.rbac.authorization.k8s.io/kubectl-etcd-backup-nightly created
rolebinding.rbac.authorization.k8s.io/kubectl-etcd-backup-nightly created
lease.coordination.k8s.io/kubectl-etcd-backup-nightly created
cronjob.batch/kubectl-etcd-backup-nightly created`
	if err != nil || applied(got) != want {
		t.Fatalf("first install:\n%s\n%v\nwant\n%s", applied(got), err, want)
	}
	leases := cs.CoordinationV1().Leases(c.Namespace)
	if err := WriteRecord(ctx, leases, c.Namespace, c.ObjectName(), Outcome{Time: metav1.Now().Time, File: "f", SHA256: "ab", Size: 1}); err != nil {
		t.Fatal(err)
	}

	c.Schedule = "30 3 * * *"
	got, err = Install(ctx, cs, rendered(t, c))
	if err != nil || !strings.Contains(applied(got), "cronjob.batch/kubectl-etcd-backup-nightly configured") || !strings.Contains(applied(got), "lease.coordination.k8s.io/kubectl-etcd-backup-nightly unchanged") {
		t.Fatalf("second install:\n%s\n%v", applied(got), err)
	}
	cj, _ := cs.BatchV1().CronJobs(c.Namespace).Get(ctx, c.ObjectName(), metav1.GetOptions{})
	lease, _ := leases.Get(ctx, c.ObjectName(), metav1.GetOptions{})
	if cj.Spec.Schedule != "30 3 * * *" || lease.Annotations[AnnoLastFile] != "f" {
		t.Errorf("after the update: schedule %q, record %v", cj.Spec.Schedule, lease.Annotations)
	}

	other := config("node:/var/lib/etcd-backups")
	other.Name = "weekly"
	cs = fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: other.ObjectName(), Namespace: other.Namespace}})
	got, err = Install(ctx, cs, rendered(t, other))
	if err == nil || !strings.Contains(err.Error(), "is not schedule weekly's") || len(got) != 0 {
		t.Errorf("someone else's ConfigMap: %v, %v", got, err)
	}
}

// Uninstall deletes the schedule's labelled objects and nothing else:
// not another schedule's, not an object that only shares the name.
func TestUninstall(t *testing.T) {
	ctx := context.Background()
	c := config("pvc:etcd-backups")
	other := config("node:/var/lib/etcd-backups")
	other.Name = "weekly"
	stranger := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "kubectl-etcd-backup-x", Namespace: c.Namespace, Labels: map[string]string{ScheduleLabel: c.Name}}}
	cs := fake.NewClientset(stranger)
	for _, s := range []Config{c, other} {
		if _, err := Install(ctx, cs, rendered(t, s)); err != nil {
			t.Fatal(err)
		}
	}

	dry, err := Uninstall(ctx, cs, c.Namespace, c.Name, true)
	if err != nil || len(dry.Refs) != 6 || count(t, cs, c.Namespace) != 13 {
		t.Fatalf("a dry run: %v, %v; %d objects left", dry.Refs, err, count(t, cs, c.Namespace))
	}
	r, err := Uninstall(ctx, cs, c.Namespace, c.Name, false)
	want := "cronjob.batch/kubectl-etcd-backup-nightly lease.coordination.k8s.io/kubectl-etcd-backup-nightly rolebinding.rbac.authorization.k8s.io/kubectl-etcd-backup-nightly role.rbac.authorization.k8s.io/kubectl-etcd-backup-nightly serviceaccount/kubectl-etcd-backup-nightly configmap/kubectl-etcd-backup-nightly"
	if err != nil || strings.Join(r.Refs, " ") != want || r.Config == nil || r.Config.Dest.Arg() != "pvc:etcd-backups" {
		t.Fatalf("uninstall: %v, %+v, %v", r.Refs, r.Config, err)
	}
	if n := count(t, cs, c.Namespace); n != 7 {
		t.Errorf("%d objects left, want weekly's 6 and the unlabelled CronJob", n)
	}
	if _, err := Uninstall(ctx, cs, c.Namespace, c.Name, false); err == nil || !strings.Contains(err.Error(), "no schedule nightly") {
		t.Errorf("uninstalling it again: %v", err)
	}
}

func count(t *testing.T, cs kubernetes.Interface, ns string) int {
	t.Helper()
	ctx, all := context.Background(), metav1.ListOptions{}
	cms, _ := cs.CoreV1().ConfigMaps(ns).List(ctx, all)
	sas, _ := cs.CoreV1().ServiceAccounts(ns).List(ctx, all)
	roles, _ := cs.RbacV1().Roles(ns).List(ctx, all)
	rbs, _ := cs.RbacV1().RoleBindings(ns).List(ctx, all)
	leases, _ := cs.CoordinationV1().Leases(ns).List(ctx, all)
	cjs, _ := cs.BatchV1().CronJobs(ns).List(ctx, all)
	return len(cms.Items) + len(sas.Items) + len(roles.Items) + len(rbs.Items) + len(leases.Items) + len(cjs.Items)
}
