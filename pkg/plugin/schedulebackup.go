package plugin

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/schedule"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/version"
)

var scheduleBackupLong = longDesc(`
	Install a schedule of backups NAME, taken in the cluster: a CronJob whose pod
	runs on a control-plane node, in its host network, reads etcd's client
	certificate, key and CA (each mounted alone, read-only; the paths are read
	from the etcd pods, which must all name the same), takes the member's
	snapshot over the node's loopback, compresses it (zstd) and encrypts it
	for the age recipients as it streams, verifies it, and only then names it
	NAME-20261207T020000Z.db.zst.age (the time in UTC) at the destination, 0600.

	Destinations (--to): node:/DIR, a dir on whichever control-plane node ran
	the job; pvc:CLAIM, a PersistentVolumeClaim in the schedule's namespace;
	s3://BUCKET/PREFIX, S3 or S3-compatible storage, with --s3-endpoint and the
	credentials in --s3-secret (keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).

	A schedule never writes plain text and keeps no key in the cluster: it needs
	--recipient or --recipients-file, and only their public keys are installed.
	Retention touches only the schedule's own files: the newest --keep (7 when
	neither --keep nor --max-age is given) and all younger than --max-age are
	kept; the newest is always kept; nothing else at the destination is touched.

	Installed in --schedule-namespace (kube-system unless given): a ConfigMap
	(the schedule), a ServiceAccount whose Role allows get and update on the
	schedule's own Lease and nothing else, that Lease (where each run records
	its outcome), and the CronJob, all labelled
	app.kubernetes.io/managed-by=kubectl-etcd. Another namespace must admit
	privileged pods (its pods use the host network and host paths).

	The image runs kubectl-etcd itself: ghcr.io/kubectl-etcd/kubectl-etcd with
	this plugin's version as its tag, unless --backup-image or
	$KUBECTL_ETCD_BACKUP_IMAGE names a mirror. --dry-run=client -o yaml prints
	the objects and installs nothing, for GitOps. --uninstall removes the
	schedule's objects; the backups it wrote stay.`)

var scheduleBackupExample = templates.Examples(`
	# Every night at 02:00 UTC, to a dir on the control-plane node, keeping 7
	kubectl etcd schedule backup nightly --schedule "0 2 * * *" --to node:/var/lib/etcd-backups --recipient age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq

	# Hourly to S3-compatible storage, kept for 14 days
	kubectl etcd schedule backup hourly --schedule @hourly --to s3://backups/etcd/prod --s3-endpoint https://minio.example:9000 --s3-secret etcd-backup-s3 --max-age 14d --recipients-file recipients.txt

	# The objects as YAML, for a GitOps repository; nothing installed
	kubectl etcd schedule backup nightly --schedule "0 2 * * *" --to pvc:etcd-backups --recipient age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq --dry-run=client -o yaml

	# Remove the schedule (its backups stay)
	kubectl etcd schedule backup nightly --uninstall`)

// ScheduleBackupOptions are the options of `kubectl etcd schedule backup`.
type ScheduleBackupOptions struct {
	*GlobalOptions
	Name              string
	Schedule          string
	To                string
	ScheduleNamespace string
	Keep              int
	MaxAge            string
	BackupImage       string
	S3Endpoint        string
	S3Region          string
	S3Secret          string
	DryRun            string
	Output            string
	Uninstall         bool
	ageRecipients

	// Set by Complete and Validate.
	defaultImage bool
	keys         []string
	config       schedule.Config
}

// Dry runs accepted by --dry-run.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
)

// NewCmdScheduleBackup returns the schedule backup command.
func NewCmdScheduleBackup(g *GlobalOptions) *cobra.Command {
	o := &ScheduleBackupOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:     "backup NAME --schedule CRON --to DEST --recipient KEY",
		Short:   "Install (or remove) a schedule of encrypted backups taken by a CronJob",
		Long:    scheduleBackupLong,
		Example: scheduleBackupExample,
		Args:    cobra.ExactArgs(1),
		RunE:    runEArgs(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.Schedule, "schedule", "", "When to take a backup: five cron fields in UTC, such as \"0 */6 * * *\", or @hourly, @daily.")
	f.StringVar(&o.To, "to", "", "Where to keep the backups: node:/DIR (on the control-plane node that ran the job), pvc:CLAIM or s3://BUCKET/PREFIX.")
	f.StringVar(&o.ScheduleNamespace, "schedule-namespace", "kube-system", "Namespace of the schedule's objects (and of its PVC or S3 Secret); one other than kube-system must admit privileged pods.")
	f.IntVar(&o.Keep, "keep", 0, "Keep the newest N of the schedule's backups (7 when neither --keep nor --max-age is given).")
	f.StringVar(&o.MaxAge, "max-age", "", "Keep every backup of the schedule younger than this, such as 30d or 36h; with --keep, the newest N are kept too.")
	f.StringVar(&o.BackupImage, "backup-image", "", "Image of the schedule's pod, which runs kubectl-etcd (default ghcr.io/kubectl-etcd/kubectl-etcd:VERSION, this plugin's version, or $KUBECTL_ETCD_BACKUP_IMAGE).")
	f.StringVar(&o.S3Endpoint, "s3-endpoint", "", "With an s3:// destination: the storage's URL, such as https://minio.example:9000 (default: AWS, by --s3-region).")
	f.StringVar(&o.S3Region, "s3-region", "", "With an s3:// destination: its region (default us-east-1).")
	f.StringVar(&o.S3Secret, "s3-secret", "", "With an s3:// destination: the Secret, in the schedule's namespace, whose keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY the pod reads.")
	f.StringVar(&o.DryRun, "dry-run", dryRunNone, "client: print what would be installed (or, with --uninstall, removed) and change nothing.")
	f.Lookup("dry-run").NoOptDefVal = dryRunClient
	f.StringVarP(&o.Output, "output", "o", "", "With --dry-run=client: print the objects as yaml (one document each) or json (a List).")
	f.BoolVar(&o.Uninstall, "uninstall", false, "Remove the schedule's objects. The backups it wrote stay where they are.")
	o.ageRecipients.addFlags(f)
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions([]string{dryRunNone, dryRunClient}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// BackupImageEnv overrides the default image of a schedule's pod, for
// clusters that pull from a mirror.
const BackupImageEnv = "KUBECTL_ETCD_BACKUP_IMAGE"

// Complete reads the recipients and the defaults, and builds the clients.
func (o *ScheduleBackupOptions) Complete(args []string) error {
	o.Name = args[0]
	if o.BackupImage == "" {
		o.BackupImage, o.defaultImage = os.Getenv(BackupImageEnv), true
	}
	if o.BackupImage == "" {
		o.BackupImage = schedule.DefaultImage()
	}
	if o.Keep == 0 && o.MaxAge == "" {
		o.Keep = 7
	}
	if err := o.ageRecipients.complete(); err != nil {
		return err
	}
	var err error
	if o.keys, err = snapshot.RecipientKeys(o.recipients); err != nil {
		return err
	}
	return o.GlobalOptions.Complete()
}

// Validate checks the flags and builds the schedule but for the
// member's files, which Run reads from the etcd pods.
func (o *ScheduleBackupOptions) Validate() error {
	if err := schedule.CheckName(o.Name); err != nil {
		return err
	}
	switch {
	case o.DryRun == "server":
		return fmt.Errorf("--dry-run=server is not supported: use --dry-run=client")
	case o.DryRun != dryRunNone && o.DryRun != dryRunClient:
		return fmt.Errorf("--dry-run %q: want none or client", o.DryRun)
	case o.Output != "" && o.Output != "yaml" && o.Output != "json":
		return fmt.Errorf("-o %q: want yaml or json", o.Output)
	case o.Output != "" && (o.DryRun != dryRunClient || o.Uninstall):
		return fmt.Errorf("-o prints the objects --dry-run=client would install: add --dry-run=client")
	case o.Uninstall:
		return nil
	case o.Schedule == "":
		return fmt.Errorf("--schedule is required, such as --schedule \"0 2 * * *\" (five cron fields, UTC) or @daily")
	case o.To == "":
		return fmt.Errorf("--to is required: node:/DIR, pvc:CLAIM or s3://BUCKET/PREFIX")
	case len(o.Recipients)+len(o.RecipientFiles) == 0:
		return fmt.Errorf("a schedule writes only age-encrypted backups, and keeps no key in the cluster: give --recipient age1... or --recipients-file FILE (public keys; keep the identity that decrypts them off the cluster)")
	case o.Keep < 0:
		return fmt.Errorf("--keep must be 0 or more")
	}
	dest, err := schedule.ParseDest(o.To)
	if err != nil {
		return err
	}
	if dest.Kind != schedule.DestS3 && o.S3Endpoint+o.S3Region+o.S3Secret != "" {
		return fmt.Errorf("--s3-endpoint, --s3-region and --s3-secret go with an s3:// destination, not %s", o.To)
	}
	dest.Endpoint, dest.Region, dest.Secret = o.S3Endpoint, o.S3Region, o.S3Secret
	keep := schedule.Rule{Count: o.Keep}
	if o.MaxAge != "" {
		if keep.MaxAge, err = schedule.ParseAge(o.MaxAge); err != nil {
			return err
		}
	}
	o.config = schedule.Config{Name: o.Name, Namespace: o.ScheduleNamespace, Schedule: o.Schedule, Recipients: o.keys,
		Dest: dest, Keep: keep, Image: o.BackupImage}
	return o.config.CheckSettings()
}

// Run installs the schedule, prints it, or removes it.
func (o *ScheduleBackupOptions) Run(ctx context.Context) error {
	if o.Uninstall {
		return o.uninstall(ctx)
	}
	members, err := o.Members(ctx)
	if err != nil {
		return err
	}
	if err := o.config.UseMembers(members); err != nil {
		return err
	}
	warnings, err := schedule.Preflight(ctx, o.Client, o.config, o.DryRun == dryRunNone)
	if o.defaultImage && version.Version == "dev" {
		warnings = append(warnings, fmt.Sprintf("this kubectl-etcd is a development build: no image %s is published; give --backup-image", o.BackupImage))
	}
	for _, w := range warnings {
		fmt.Fprintf(o.ErrOut, "Warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	objs, err := schedule.Render(o.config)
	if err != nil {
		return err
	}
	if o.DryRun == dryRunClient {
		return o.printDry(objs)
	}
	applied, err := schedule.Install(ctx, o.Client, objs)
	for _, a := range applied {
		fmt.Fprintln(o.Out, a)
	}
	if err != nil {
		return err
	}
	return o.sayNext()
}

// printDry prints what an install would do, or the objects themselves.
func (o *ScheduleBackupOptions) printDry(objs []runtime.Object) error {
	var b []byte
	var err error
	switch o.Output {
	case "yaml":
		b, err = schedule.YAML(objs)
	case "json":
		b, err = schedule.JSON(objs)
	default:
		for _, obj := range objs {
			fmt.Fprintf(o.Out, "%s applied (dry run)\n", schedule.Ref(obj))
		}
		return nil
	}
	if err != nil {
		return err
	}
	_, err = o.Out.Write(b)
	return err
}

// sayNext says when the schedule runs next, and where to see its runs.
func (o *ScheduleBackupOptions) sayNext() error {
	now := o.Now()
	next, err := o.config.Next(now)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.ErrOut, "Schedule %s runs at %q UTC, next at %s (in %s), and keeps its backups in %s.\nSee how its runs went: kubectl etcd schedule list --schedule-namespace %s\n",
		o.Name, o.Schedule, next.Format("2006-01-02 15:04 MST"), duration.HumanDuration(next.Sub(now)), o.config.Dest, o.ScheduleNamespace)
	return nil
}

func (o *ScheduleBackupOptions) uninstall(ctx context.Context) error {
	removed, err := schedule.Uninstall(ctx, o.Client, o.ScheduleNamespace, o.Name, o.DryRun == dryRunClient)
	suffix := ""
	if o.DryRun == dryRunClient {
		suffix = " (dry run)"
	}
	for _, ref := range removed.Refs {
		fmt.Fprintf(o.Out, "%s deleted%s\n", ref, suffix)
	}
	if err != nil {
		return err
	}
	where := "where they are"
	if removed.Config != nil {
		where = "in " + removed.Config.Dest.String()
	}
	fmt.Fprintf(o.ErrOut, "The backups schedule %s wrote stay %s: kubectl etcd removes none of them.\n", o.Name, where)
	return nil
}
