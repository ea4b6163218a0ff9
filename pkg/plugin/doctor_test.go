package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster/clustertest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
)

func TestCheckAndMetricsRefuseBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"check", "--window", "-1s"}, "--window must not be negative"},
		{[]string{"check", "--skip", "nope"}, `no check or area "nope"`},
		{[]string{"check", "-o", "xml"}, "unknown output format"},
		{[]string{"metrics", "--transport", "exec"}, "--transport exec cannot read metrics"},
		{[]string{"metrics", "--window", "-2s"}, "--window must not be negative"},
		{[]string{"metrics", "--member", "nope"}, `no member named "nope"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			g := NewGlobalOptions(streams)
			g.Client = fake.NewClientset(etcdPod("hc-cp1"))
			cmd := NewCmdEtcdWithOptions(g)
			cmd.SetArgs(tc.args)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCheckStrict: a warning alone exits 0, and non-zero with --strict;
// a run without warnings passes --strict too.
func TestCheckStrict(t *testing.T) {
	learner := func(c *clustertest.Cluster) { c.Member("hc-cp3").Learner = true }
	tests := []struct {
		name    string
		args    []string
		setup   func(c *clustertest.Cluster)
		summary string // a piece of the summary on stderr
		wantErr string
	}{
		{name: "no warning passes --strict", args: []string{"--strict"}, summary: " 0 warn, 0 fail,"},
		{name: "a warning passes without --strict", setup: learner, summary: " 2 warn, 0 fail,"},
		{name: "a warning fails with --strict", args: []string{"--strict"}, setup: learner, summary: " 2 warn, 0 fail,",
			wantErr: "2 of 7 warned, and --strict fails on warnings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := maintCluster()
			if tc.setup != nil {
				tc.setup(fc)
			}
			args := append([]string{"check", "--window", "0", "--only", "topology"}, tc.args...)
			out, errOut, err := runMaint(t, fc, args...)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v\n%s%s", err, out, errOut)
			}
			if tc.wantErr != "" && (!errors.Is(err, doctor.ErrFailed) || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want doctor.ErrFailed with %q", err, tc.wantErr)
			}
			if !strings.Contains(errOut, tc.summary) {
				t.Errorf("summary lacks %q:\n%s", tc.summary, errOut)
			}
		})
	}
}

// TestCheckSchedules: check judges each installed schedule by the
// record in its Lease, at a fixed clock, and says so in its table; no
// schedule at all warns, and RBAC denying the list is a finding.
func TestCheckSchedules(t *testing.T) {
	day := 24 * time.Hour
	install := func(t *testing.T, cs *fake.Clientset, name, cron string) {
		t.Helper()
		if _, errOut, err := runSchedule(t, cs, "schedule", "backup", name, "--schedule", cron, "--to", "node:/var/lib/etcd-backups", "--recipient", testRecipient, "--backup-image", "mirror.example/kubectl-etcd:v1"); err != nil {
			t.Fatal(err, errOut)
		}
	}
	record := func(t *testing.T, cs *fake.Clientset, name string, o schedule.Outcome) {
		t.Helper()
		if o.SHA256 != "" {
			o.File, o.Size = schedule.FileName(name, o.Time), 21<<20
		}
		if err := schedule.WriteRecord(context.Background(), cs.CoordinationV1().Leases("kube-system"), "kube-system", "kubectl-etcd-backup-"+name, o); err != nil {
			t.Fatal(err)
		}
	}
	cronJobs := func(cs *fake.Clientset) batchv1client.CronJobInterface { return cs.BatchV1().CronJobs("kube-system") }
	edit := func(t *testing.T, cs *fake.Clientset, name string, f func(*batchv1.CronJob)) {
		t.Helper()
		cj, err := cronJobs(cs).Get(context.Background(), "kubectl-etcd-backup-"+name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f(cj)
		if _, err := cronJobs(cs).Update(context.Background(), cj, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, cs *fake.Clientset)
	}{
		{"check-schedules-none", func(*testing.T, *fake.Clientset) {}},
		{"check-schedules", func(t *testing.T, cs *fake.Clientset) {
			install(t, cs, "nightly", "0 2 * * *")
			record(t, cs, "nightly", schedule.Outcome{Time: scheduleNow.Add(-10 * time.Hour), SHA256: "ab", Took: "1s"})
			install(t, cs, "stale", "0 2 * * *")
			record(t, cs, "stale", schedule.Outcome{Time: scheduleNow.Add(-3 * day), SHA256: "ab", Took: "1s"})
			record(t, cs, "stale", schedule.Outcome{Time: scheduleNow.Add(-10 * time.Hour), Took: "1s", Error: "snapshot not kept: etcd at https://127.0.0.1:2379 did not answer"})
			install(t, cs, "broken", "@hourly")
			record(t, cs, "broken", schedule.Outcome{Time: scheduleNow.Add(-20 * time.Minute), Took: "1s", Error: "s3://backups/etcd/: AWS S3 denied access"})
			install(t, cs, "paused", "0 2 * * *")
			record(t, cs, "paused", schedule.Outcome{Time: scheduleNow.Add(-10 * time.Hour), SHA256: "ab", Took: "1s"})
			edit(t, cs, "paused", func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) })
			install(t, cs, "new", "0 */6 * * *")
			edit(t, cs, "new", func(cj *batchv1.CronJob) { cj.CreationTimestamp = metav1.NewTime(scheduleNow.Add(-time.Hour)) })
		}},
		{"check-schedules-rbac", func(t *testing.T, cs *fake.Clientset) {
			cs.PrependReactor("list", "cronjobs", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "cronjobs"}, "", errors.New(`User "dev" cannot list resource "cronjobs" in API group "batch" at the cluster scope`))
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := scheduleCluster(etcdPod("hc-cp3"))
			tc.setup(t, cs)
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			g := NewGlobalOptions(streams)
			g.Client, g.Clients, g.Now = cs, maintCluster(), func() time.Time { return scheduleNow }
			cmd := NewCmdEtcdWithOptions(g)
			cmd.SetArgs([]string{"check", "--only", "backups.schedules"})
			if err := cmd.ExecuteContext(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			golden.Assert(t, "cmd-"+tc.name, out.Bytes())
		})
	}
}
