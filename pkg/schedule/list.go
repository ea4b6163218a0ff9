package schedule

import (
	"cmp"
	"context"
	"path"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// Status is an installed schedule as `schedule list` shows it: its
// CronJob, its config and the record of its runs.
type Status struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Schedule  string `json:"schedule"`
	Suspended bool   `json:"suspended,omitempty"`
	// Created is when its CronJob was.
	Created time.Time `json:"created,omitzero"`
	// Destination is as --to names it; Retention as Rule.String says it.
	Destination string `json:"destination,omitempty"`
	Retention   string `json:"retention,omitempty"`
	Image       string `json:"image,omitempty"`
	Record      Record `json:"record"`
	// Problem is what could not be read: the config or the record.
	Problem string `json:"problem,omitempty"`
}

// List reads the schedules installed in ns ("" for every namespace):
// three lists, of the CronJobs, ConfigMaps and Leases kubectl etcd
// labelled as a schedule's.
func List(ctx context.Context, cs kubernetes.Interface, ns string) ([]Status, error) {
	sel := metav1.ListOptions{LabelSelector: Selector("")}
	jobs, err := cs.BatchV1().CronJobs(ns).List(ctx, sel)
	if err != nil {
		return nil, discovery.ExplainAPIError(err, "list", "cronjobs", ns)
	}
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if err != nil {
		return nil, discovery.ExplainAPIError(err, "list", "configmaps", ns)
	}
	leases, err := cs.CoordinationV1().Leases(ns).List(ctx, sel)
	if err != nil {
		return nil, discovery.ExplainAPIError(err, "list", "leases", ns)
	}
	key := func(m metav1.ObjectMeta) string { return m.Namespace + "/" + m.Name }
	configs := map[string]string{}
	for _, cm := range cms.Items {
		configs[key(cm.ObjectMeta)] = cm.Data[path.Base(ConfigFile)]
	}
	records := map[string]*coordinationv1.Lease{}
	for i := range leases.Items {
		records[key(leases.Items[i].ObjectMeta)] = &leases.Items[i]
	}
	out := []Status{}
	for _, j := range jobs.Items {
		s := Status{Name: j.Labels[ScheduleLabel], Namespace: j.Namespace, Schedule: j.Spec.Schedule, Suspended: j.Spec.Suspend != nil && *j.Spec.Suspend,
			Created: j.CreationTimestamp.Time}
		var problems []string
		if c, err := ParseConfig([]byte(configs[key(j.ObjectMeta)])); err != nil {
			problems = append(problems, err.Error())
		} else {
			s.Destination, s.Retention, s.Image = c.Dest.Arg(), c.Keep.String(), c.Image
		}
		if lease := records[key(j.ObjectMeta)]; lease != nil {
			if s.Record, err = ReadRecord(lease); err != nil {
				problems = append(problems, err.Error())
			}
		}
		s.Problem = strings.Join(problems, "; ")
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}
