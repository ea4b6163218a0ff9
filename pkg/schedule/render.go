package schedule

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/version"
)

// Config is one schedule, as installed: everything its runs need, in a
// ConfigMap beside the CronJob. It holds no secret: the age recipients
// are public keys, and object storage's credentials stay in the Secret
// the user names.
type Config struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Schedule is the CronJob's, in cron syntax.
	Schedule string `json:"schedule"`
	// Recipients are age public keys; a schedule never writes plain text.
	Recipients []string `json:"recipients"`
	Dest       Dest     `json:"dest"`
	Keep       Rule     `json:"keep"`
	Image      string   `json:"image"`
	// Endpoint and the TLS files are the member's on each control-plane
	// node (kubeadm's are the same on every one).
	Endpoint string `json:"endpoint"`
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	CAFile   string `json:"caFile"`
}

// Dest is where a schedule writes.
type Dest struct {
	// Kind is DestNode (a dir on the node that ran it), DestPVC or DestS3.
	Kind string `json:"kind"`
	// Path is the node dir; Claim the PVC (mounted at DestMount).
	Path  string `json:"path,omitempty"`
	Claim string `json:"claim,omitempty"`
	// Bucket and Prefix are S3's; Endpoint its URL ("" for AWS), Region
	// its region, Secret the Secret with AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY in the schedule's namespace.
	Bucket   string `json:"bucket,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Region   string `json:"region,omitempty"`
	Secret   string `json:"secret,omitempty"`
}

// Destination kinds.
const (
	DestNode = "node"
	DestPVC  = "pvc"
	DestS3   = "s3"
)

// DestMount is where a node dir or a PVC appears in the job's pod.
const DestMount = "/backups"

// ParseDest reads a destination (--to, DEST): node:/DIR, pvc:CLAIM or s3://BUCKET[/PREFIX].
func ParseDest(s string) (Dest, error) {
	switch {
	case strings.HasPrefix(s, "node:"):
		p := strings.TrimPrefix(s, "node:")
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return Dest{}, fmt.Errorf("destination %s: the node dir must be a clean absolute path other than /, such as node:/var/lib/etcd-backups", s)
		}
		return Dest{Kind: DestNode, Path: p}, nil
	case strings.HasPrefix(s, "pvc:"):
		c := strings.TrimPrefix(s, "pvc:")
		if c == "" || strings.ContainsAny(c, "/ ") {
			return Dest{}, fmt.Errorf("destination %s: name a PersistentVolumeClaim in the schedule's namespace, such as pvc:etcd-backups", s)
		}
		return Dest{Kind: DestPVC, Claim: c}, nil
	case strings.HasPrefix(s, "s3://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return Dest{}, fmt.Errorf("destination %s: want s3://BUCKET or s3://BUCKET/PREFIX", s)
		}
		prefix := strings.Trim(u.Path, "/")
		if prefix != "" {
			prefix += "/"
		}
		return Dest{Kind: DestS3, Bucket: u.Host, Prefix: prefix}, nil
	}
	return Dest{}, fmt.Errorf("destination %q: want node:/DIR, pvc:CLAIM or s3://BUCKET[/PREFIX]", s)
}

// String says where the schedule writes.
func (d Dest) String() string {
	switch d.Kind {
	case DestNode:
		return "node:" + d.Path + " (on the control-plane node that ran it)"
	case DestPVC:
		return "pvc:" + d.Claim
	}
	s := "s3://" + d.Bucket + "/" + d.Prefix
	if d.Endpoint != "" {
		s += " at " + d.Endpoint
	}
	return s
}

// Arg is the destination as --to names it.
func (d Dest) Arg() string {
	switch d.Kind {
	case DestNode:
		return "node:" + d.Path
	case DestPVC:
		return "pvc:" + d.Claim
	}
	return "s3://" + d.Bucket + "/" + d.Prefix
}

// ImageRepo is where the project's image is published, tagged with each
// release's version.
const ImageRepo = "ghcr.io/kubectl-etcd/kubectl-etcd"

// DefaultImage is the image of this plugin's own version: the release
// tags it with the version as the tag was pushed (v0.4.0), with _ for
// the + of a snapshot's build metadata, which a tag cannot hold
// (.goreleaser.yaml's dockers_v2 does the same).
func DefaultImage() string { return ImageRepo + ":" + ImageTag(version.Version) }

// ImageTag is the image tag of a plugin version.
func ImageTag(v string) string { return strings.ReplaceAll(v, "+", "_") }

// Validate checks the schedule before anything is installed: its
// settings, and the member's files the job reads.
func (c Config) Validate() error {
	if err := c.CheckSettings(); err != nil {
		return err
	}
	if c.Endpoint == "" || c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return fmt.Errorf("etcd's pod names no client URL, certificate, key and CA, which the schedule's pod reads")
	}
	return nil
}

// CheckSettings checks what the user chose: all but the member's
// endpoint and files, which come from the etcd pods.
func (c Config) CheckSettings() error {
	if err := CheckName(c.Name); err != nil {
		return err
	}
	if err := c.checkSchedule(); err != nil {
		return err
	}
	switch {
	case c.Namespace == "":
		return fmt.Errorf("the schedule needs a namespace")
	case len(c.Recipients) == 0:
		return fmt.Errorf("a schedule writes only age-encrypted snapshots, and keeps no key in the cluster: give --recipient or --recipients-file")
	case c.Dest.Kind != DestNode && c.Dest.Kind != DestPVC && c.Dest.Kind != DestS3:
		return fmt.Errorf("destination kind %q: want node, pvc or s3", c.Dest.Kind)
	case c.Keep.Count < 0 || c.Keep.MaxAge < 0:
		return fmt.Errorf("retention %+v: neither a count nor an age is negative", c.Keep)
	case c.Dest.Kind == DestS3 && c.Dest.Secret == "":
		return fmt.Errorf("an S3 destination needs --s3-secret: a Secret in %s with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", c.Namespace)
	case c.Image == "":
		return fmt.Errorf("the schedule needs an image")
	}
	return nil
}

// checkSchedule parses the schedule as the CronJob controller does.
func (c Config) checkSchedule() error {
	if len(strings.Fields(c.Schedule)) != 5 && !strings.HasPrefix(c.Schedule, "@") {
		return fmt.Errorf("--schedule %q: want five cron fields, such as \"0 */6 * * *\", or @hourly, @daily", c.Schedule)
	}
	if _, err := cron.ParseStandard(c.Schedule); err != nil {
		return fmt.Errorf("--schedule %q: %w", c.Schedule, err)
	}
	return nil
}

// TimeZone is the CronJob's: a schedule's times are UTC's, whatever
// the controller's local time is.
const TimeZone = "Etc/UTC"

// Next is when the schedule runs next after now, in UTC.
func (c Config) Next(now time.Time) (time.Time, error) {
	s, err := cron.ParseStandard(c.Schedule)
	if err != nil {
		return time.Time{}, err
	}
	return s.Next(now.UTC()), nil
}

// Labels marks every object a schedule installs.
func (c Config) Labels() map[string]string {
	return map[string]string{agentapi.ManagedByLabel: agentapi.ManagedByValue, ScheduleLabel: c.Name}
}

// ScheduleLabel names the schedule an object belongs to.
const ScheduleLabel = "kubectl-etcd.io/schedule"

// Selector selects the objects of schedule name, or of every schedule
// when name is "".
func Selector(name string) string {
	s := agentapi.ManagedByLabel + "=" + agentapi.ManagedByValue + "," + ScheduleLabel
	if name != "" {
		s += "=" + name
	}
	return s
}

// ObjectName is the name of the schedule's objects (ConfigMap,
// ServiceAccount, Role, RoleBinding, Lease, CronJob).
func (c Config) ObjectName() string { return "kubectl-etcd-backup-" + c.Name }

// ConfigFile is where the job's pod reads the Config.
const ConfigFile = "/etc/kubectl-etcd/schedule.json"

// Render is what `schedule backup` installs, in the order to apply it:
// the ConfigMap, the ServiceAccount and what it may do, the Lease where
// each run records itself, and the CronJob. The Lease is installed, not
// created by the job, so that the job may touch nothing but it: RBAC
// cannot narrow create to one name.
func Render(c Config) ([]runtime.Object, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	name, labels := c.ObjectName(), c.Labels()
	meta := func() metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: labels} }
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: meta(),
		Data: map[string]string{path.Base(ConfigFile): string(cfg)}}
	sa := &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta()}
	role := &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta(),
		Rules: []rbacv1.PolicyRule{
			// Its own Lease, to record each run; nothing else.
			{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, ResourceNames: []string{name}, Verbs: []string{"get", "update"}},
		}}
	binding := &rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta(),
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: c.Namespace}}}
	lease := &coordinationv1.Lease{TypeMeta: metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"}, ObjectMeta: meta()}
	return []runtime.Object{cm, sa, role, binding, lease, cronJob(c, meta(), labels)}, nil
}

// HostRoot is where the node's files appear in the job's pod: each of
// etcd's client files at HostRoot + its node path.
const HostRoot = "/host"

// JobDeadline bounds one run (its Job's activeDeadlineSeconds): a
// snapshot of etcd's largest database (8 GiB) takes minutes, not half an
// hour.
const JobDeadline = 30 * time.Minute

// ControlPlaneLabel marks the nodes a schedule's pod may run on.
const ControlPlaneLabel = "node-role.kubernetes.io/control-plane"

func cronJob(c Config, meta metav1.ObjectMeta, labels map[string]string) *batchv1.CronJob {
	name := c.ObjectName()
	// etcd's client certificate, key and CA, each mounted alone,
	// read-only: no dir around them (kubeadm keeps the CA's key beside
	// its certificate).
	files := []struct{ name, host string }{{"etcd-cert", c.CertFile}, {"etcd-key", c.KeyFile}, {"etcd-ca", c.CAFile}}
	var vols []corev1.Volume
	var vms []corev1.VolumeMount
	for _, f := range files {
		vols = append(vols, corev1.Volume{Name: f.name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: f.host, Type: ptr.To(corev1.HostPathFile)}}})
		vms = append(vms, corev1.VolumeMount{Name: f.name, MountPath: HostRoot + f.host, ReadOnly: true})
	}
	vols = append(vols, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}}}},
		corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("64Mi"))}}})
	vms = append(vms, corev1.VolumeMount{Name: "config", MountPath: path.Dir(ConfigFile), ReadOnly: true}, corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"})
	switch c.Dest.Kind {
	case DestNode:
		vols = append(vols, corev1.Volume{Name: "dest", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: c.Dest.Path, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}})
		vms = append(vms, corev1.VolumeMount{Name: "dest", MountPath: DestMount})
	case DestPVC:
		vols = append(vols, corev1.Volume{Name: "dest", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Dest.Claim}}})
		vms = append(vms, corev1.VolumeMount{Name: "dest", MountPath: DestMount})
	}
	var env []corev1.EnvVar
	if c.Dest.Kind == DestS3 {
		for _, k := range []string{EnvAccessKeyID, EnvSecretAccessKey} {
			env = append(env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: c.Dest.Secret}, Key: k}}})
		}
	}
	pod := corev1.PodSpec{
		ServiceAccountName: name,
		RestartPolicy:      corev1.RestartPolicyNever,
		// The member's loopback listener; kubeadm runs one on every
		// control-plane node, with the same certificate paths.
		HostNetwork:  true,
		DNSPolicy:    corev1.DNSClusterFirstWithHostNet,
		NodeSelector: map[string]string{ControlPlaneLabel: ""},
		Tolerations:  []corev1.Toleration{{Key: ControlPlaneLabel, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		Containers: []corev1.Container{{
			Name:            "backup",
			Image:           c.Image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"kubectl-etcd", "schedule", "run", "--config", ConfigFile},
			Env:             env,
			VolumeMounts:    vms,
			// Root only to read kubeadm's root-owned 0600 key; nothing else.
			SecurityContext: &corev1.SecurityContext{
				RunAsUser:                ptr.To[int64](0),
				RunAsNonRoot:             ptr.To(false),
				Privileged:               ptr.To(false),
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
		}},
		Volumes: vols,
	}
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: meta,
		Spec: batchv1.CronJobSpec{
			Schedule:                   c.Schedule,
			TimeZone:                   ptr.To(TimeZone),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			SuccessfulJobsHistoryLimit: ptr.To[int32](3),
			FailedJobsHistoryLimit:     ptr.To[int32](3),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: batchv1.JobSpec{
					BackoffLimit:          ptr.To[int32](1),
					ActiveDeadlineSeconds: ptr.To(int64(JobDeadline.Seconds())),
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       pod,
					},
				},
			},
		},
	}
}

// YAML is objs as one YAML document each, for GitOps (kubectl apply -f
// and kustomize read it as it is).
func YAML(objs []runtime.Object) ([]byte, error) {
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		docs = append(docs, string(b))
	}
	return []byte(strings.Join(docs, "---\n")), nil
}

// JSON is objs as a v1 List, as kubectl prints several objects.
func JSON(objs []runtime.Object) ([]byte, error) {
	list := metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	for _, o := range objs {
		list.Items = append(list.Items, runtime.RawExtension{Object: o})
	}
	b, err := json.MarshalIndent(list, "", "    ")
	return append(b, '\n'), err
}
