package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// A schedule's record is in the annotations of its Lease, which only
// its job may update: what the last run tried, and what the last good
// one kept. `schedule list` reads it; nothing else is needed to see
// whether backups are being taken.

// The record's annotations.
const (
	annoPrefix       = "kubectl-etcd.io/"
	AnnoLastAttempt  = annoPrefix + "last-attempt"
	AnnoLastTook     = annoPrefix + "last-took"
	AnnoLastError    = annoPrefix + "last-error"
	AnnoLastSuccess  = annoPrefix + "last-success"
	AnnoLastFile     = annoPrefix + "last-file"
	AnnoLastSize     = annoPrefix + "last-size"
	AnnoLastRevision = annoPrefix + "last-revision"
	AnnoLastSHA256   = annoPrefix + "last-sha256"
	AnnoKeptFiles    = annoPrefix + "kept-files"
)

// Record is what a schedule's runs have left in its Lease.
type Record struct {
	// LastAttempt is when the last run started, LastTook how long it
	// took, and LastError why it failed ("" when it did not).
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	LastTook    string    `json:"lastTook,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	// LastSuccess is when the last snapshot that was kept was taken,
	// and the rest what it was: its name, the snapshot's size (before
	// compression and encryption), its revision and the file's sha256.
	LastSuccess  time.Time `json:"lastSuccess,omitzero"`
	LastFile     string    `json:"lastFile,omitempty"`
	LastSize     int64     `json:"lastSize,omitempty"`
	LastRevision int64     `json:"lastRevision,omitempty"`
	LastSHA256   string    `json:"lastSHA256,omitempty"`
	// Kept is the schedule's files at the destination after the last
	// retention, newest first.
	Kept []Object `json:"kept,omitempty"`
}

// With is r after the run o: a failed run changes only the attempt and
// the error, and a run that kept its snapshot but failed its retention
// keeps the last list of files.
func (r Record) With(o Outcome) Record {
	r.LastAttempt, r.LastTook, r.LastError = o.Time.UTC(), o.Took, o.Error
	if o.SHA256 != "" {
		r.LastSuccess, r.LastFile, r.LastSize, r.LastRevision, r.LastSHA256 = o.Time.UTC(), o.File, o.Size, o.Revision, o.SHA256
	}
	if o.Kept != nil {
		r.Kept = o.Kept
	}
	return r
}

// Annotations are r as the Lease keeps it; "" is an annotation to
// remove.
func (r Record) Annotations() (map[string]string, error) {
	kept, err := json.Marshal(r.Kept)
	if err != nil {
		return nil, err
	}
	if r.Kept == nil {
		kept = nil
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	number := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	return map[string]string{
		AnnoLastAttempt: stamp(r.LastAttempt), AnnoLastTook: r.LastTook, AnnoLastError: r.LastError,
		AnnoLastSuccess: stamp(r.LastSuccess), AnnoLastFile: r.LastFile, AnnoLastSize: number(r.LastSize),
		AnnoLastRevision: number(r.LastRevision), AnnoLastSHA256: r.LastSHA256, AnnoKeptFiles: string(kept),
	}, nil
}

// ReadRecord reads the record in a schedule's Lease. What it cannot
// read is left out and said in the error.
func ReadRecord(lease *coordinationv1.Lease) (Record, error) {
	a := lease.Annotations
	var r Record
	var errs []error
	stamp := func(k string, t *time.Time) {
		if v := a[k]; v != "" {
			var err error
			if *t, err = time.Parse(time.RFC3339, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		}
	}
	number := func(k string, n *int64) {
		if v := a[k]; v != "" {
			var err error
			if *n, err = strconv.ParseInt(v, 10, 64); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		}
	}
	stamp(AnnoLastAttempt, &r.LastAttempt)
	stamp(AnnoLastSuccess, &r.LastSuccess)
	number(AnnoLastSize, &r.LastSize)
	number(AnnoLastRevision, &r.LastRevision)
	r.LastTook, r.LastError, r.LastFile, r.LastSHA256 = a[AnnoLastTook], a[AnnoLastError], a[AnnoLastFile], a[AnnoLastSHA256]
	if v := a[AnnoKeptFiles]; v != "" {
		if err := json.Unmarshal([]byte(v), &r.Kept); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", AnnoKeptFiles, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("the record in lease %s/%s: %w", lease.Namespace, lease.Name, err)
	}
	return r, nil
}

// WriteRecord records the run o in the schedule's Lease name, which the
// install created: the job may get and update it, nothing else.
func WriteRecord(ctx context.Context, leases coordinationv1client.LeaseInterface, ns, name string, o Outcome) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// A record it cannot read is written anew.
		r, _ := ReadRecord(lease)
		a, err := r.With(o).Annotations()
		if err != nil {
			return err
		}
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		for k, v := range a {
			if v == "" {
				delete(lease.Annotations, k)
			} else {
				lease.Annotations[k] = v
			}
		}
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return hint.Permanent(fmt.Errorf("the schedule's lease %s/%s, where its runs are recorded, is gone", ns, name),
			"install the schedule again with kubectl etcd schedule backup: that creates it")
	}
	return fmt.Errorf("recording the run: %w", discovery.ExplainAPIError(err, "update", "leases", ns))
}

// FieldManager is the manager of what kubectl etcd writes.
const FieldManager = "kubectl-etcd"
