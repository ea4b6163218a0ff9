package schedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/compression"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// Job is what one run takes from the pod its CronJob starts.
type Job struct {
	// Root is where the node's files are (HostRoot in the pod), Dir
	// the node dir or PVC (DestMount).
	Root, Dir string
	// Getenv reads the S3 credentials the pod has from the Secret.
	Getenv func(string) string
	// Leases are the schedule's namespace's: the run is recorded in
	// its own.
	Leases coordinationv1client.LeaseInterface
	Now    func() time.Time
	Log    func(format string, args ...any)
}

// ReadConfig reads the config the pod has from the schedule's ConfigMap.
func ReadConfig(file string) (Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(b)
}

// RunJob is one run of c, as its CronJob's pod runs it: the member's
// snapshot on this node, zstd-compressed and age-encrypted, kept at the
// destination once verified, the retention, and the outcome recorded in
// the schedule's Lease whatever it was. The error is the run's, then
// the record's.
func RunJob(ctx context.Context, c Config, j Job) (Outcome, error) {
	start := j.Now()
	var out Outcome
	deps, err := j.deps(c)
	if err == nil {
		out, err = RunOnce(ctx, c, deps)
	} else {
		out = Outcome{Time: start.UTC(), File: FileName(c.Name, start), Error: err.Error(), Took: j.Now().Sub(start).Round(time.Millisecond).String()}
	}
	if err != nil {
		j.Log("The run failed after %s: %v", out.Took, err)
	}
	recErr := WriteRecord(ctx, j.Leases, c.Namespace, c.ObjectName(), out)
	if recErr == nil {
		j.Log("Recorded in lease %s/%s.", c.Namespace, c.ObjectName())
	}
	return out, errors.Join(err, recErr)
}

// deps are what RunOnce reaches from the job's pod.
func (j Job) deps(c Config) (RunDeps, error) {
	rs, err := snapshot.Recipients(c.Recipients, nil)
	if err != nil {
		return RunDeps{}, fmt.Errorf("the schedule's recipients: %w", err)
	}
	dest, err := j.destination(c)
	if err != nil {
		return RunDeps{}, err
	}
	src := agent.SnapshotSource{Root: j.Root, Endpoint: c.Endpoint, CertFile: c.CertFile, KeyFile: c.KeyFile, CAFile: c.CAFile}
	take := func(ctx context.Context, w io.Writer) error {
		j.Log("Taking a snapshot of etcd at %s, zstd-compressed, encrypted for %d recipient(s), to %s", c.Endpoint, len(rs), dest)
		_, err := agent.StreamSnapshot(ctx, src, compression.Zstd, w)
		return err
	}
	return RunDeps{Snapshot: take, Encrypt: snapshot.Encrypter(rs), Dest: dest, Now: j.Now, Log: j.Log}, nil
}

func (j Job) destination(c Config) (Destination, error) {
	if c.Dest.Kind != DestS3 {
		return mountedDir{Dir(j.Dir), c.Dest}, nil
	}
	return NewS3(S3Config{Endpoint: c.Dest.Endpoint, Region: c.Dest.Region, Bucket: c.Dest.Bucket, Prefix: c.Dest.Prefix,
		AccessKeyID: j.Getenv(EnvAccessKeyID), SecretAccessKey: j.Getenv(EnvSecretAccessKey), Notify: j.Log})
}

// mountedDir is a node dir or PVC as the pod mounts it, named as the
// user named it.
type mountedDir struct {
	Dir
	dest Dest
}

func (m mountedDir) String() string { return m.dest.Arg() }
