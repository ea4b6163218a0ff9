package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// CheckRollback checks, under root, that a rollback of the restore in j
// leads back to where the node was before it:
//   - the old data dir still holds etcd's data (member/snap/db and a WAL),
//     unchanged since the restore stopped etcd on it: without it, the old
//     manifest would start an empty etcd there (hostPath DirectoryOrCreate)
//     and the API server would serve an empty cluster;
//   - once the restored manifest is in, it is still the one this restore
//     wrote, byte for byte: anything else (an edit since, a later restore's
//     manifest) would be discarded without a word;
//   - no later restore on the node is done: rolling back an older one would
//     jump back over it.
//
// A rollback that was interrupted (rolling-back) is checked only for the
// old data: the rest was checked when it began.
//
// others are the node's other journals.
func CheckRollback(root string, j *agentapi.Journal, others []*agentapi.Journal) agentapi.RollbackCheck {
	var spec agentapi.RestoreSpec
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		return agentapi.RollbackCheck{Refused: fmt.Sprintf("the journal holds no readable spec (%v): roll back by hand from its moves", err)}
	}
	c := agentapi.RollbackCheck{OldDataDir: spec.OldDataDir}
	if j.Phase == agentapi.PhaseRolledBack {
		c.Refused = "it is rolled back already"
		return c
	}
	for _, o := range others {
		if o.ID != j.ID && o.Operation == agentapi.RestoreOperation && o.Phase == agentapi.PhaseDone && o.Created.After(j.Created) {
			c.Refused = fmt.Sprintf("restore %s, done after this one, runs here: roll that one back first (kubectl etcd restore --rollback --id %s), then this one", o.ID, o.ID)
			return c
		}
	}
	// An interrupted rollback resumes: it was checked when it began, and
	// etcd may already run on the old data again.
	resuming := j.Phase == agentapi.PhaseRollingBack
	swap := j.Step(agentapi.StepSwap)
	if resuming {
		swap = nil
	}
	if spec.OldDataDir != "" {
		written, err := etcdDataWritten(under(root, spec.OldDataDir))
		if err != nil {
			c.Refused = fmt.Sprintf("the old data dir %s no longer holds etcd's data (%v), so there is no way back: the old manifest would start an empty etcd there. The node stays on the restored data; nothing was changed", spec.OldDataDir, err)
			return c
		}
		c.OldDataWritten = &written
		// etcd was gone before the swap began: a later write means someone
		// ran etcd on the old data since (slack for a slow exit's last
		// write and coarse mtimes).
		if swap != nil && swap.Started != nil && written.After(swap.Started.Add(writeSlack)) {
			c.Refused = fmt.Sprintf("the old data dir %s was written at %s, after this restore stopped etcd on it at %s: it is no longer the data from before the restore. Nothing was changed; look at what runs on it before you roll back by hand",
				spec.OldDataDir, written.UTC().Format(time.RFC3339), swap.Started.UTC().Format(time.RFC3339))
			return c
		}
	}
	if swap != nil && (swap.State == agentapi.Done || swap.State == agentapi.Running) {
		live := path.Join(spec.StaticPodDir, agentapi.EtcdManifest)
		want, err := os.ReadFile(under(root, path.Join(spec.JournalDir, agentapi.RestoredManifest)))
		if err != nil {
			c.Refused = fmt.Sprintf("the manifest this restore wrote is gone from its journal dir (%v): compare %s by hand", err, live)
			return c
		}
		got, err := os.ReadFile(under(root, live))
		switch {
		case err != nil && swap.State == agentapi.Running:
			// The swap may not have written it yet: the undo copes.
		case err != nil:
			c.Refused = fmt.Sprintf("%s is gone (%v), so etcd does not run from the manifest this restore wrote: find out what moved it before you roll back", live, err)
		case !bytes.Equal(got, want):
			c.Refused = fmt.Sprintf("%s is no longer the manifest this restore wrote (it was edited since, or a later restore wrote it): a rollback would discard that change. Put back %s to roll back, or undo the edit by hand",
				live, path.Join(spec.JournalDir, agentapi.RestoredManifest))
		}
	}
	return c
}

// writeSlack is how long after the swap began a write to the old data is
// still taken for the old etcd's own last one.
const writeSlack = 5 * time.Second

// etcdDataWritten is when etcd last wrote the data dir dir: the newest of
// member/snap/db and the WAL files. It fails when either is missing.
func etcdDataWritten(dir string) (time.Time, error) {
	db, err := os.Stat(filepath.Join(dir, "member", "snap", "db"))
	if err != nil {
		return time.Time{}, fmt.Errorf("member/snap/db: %w", bare(err))
	}
	if !db.Mode().IsRegular() || db.Size() == 0 {
		return time.Time{}, fmt.Errorf("member/snap/db is not a database file")
	}
	newest := db.ModTime()
	ents, err := os.ReadDir(filepath.Join(dir, "member", "wal"))
	if err != nil {
		return time.Time{}, fmt.Errorf("member/wal: %w", bare(err))
	}
	wals := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".wal") {
			continue
		}
		wals++
		if fi, err := e.Info(); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	if wals == 0 {
		return time.Time{}, fmt.Errorf("member/wal holds no .wal file")
	}
	return newest, nil
}

// bare drops the path (under the agent's root) from a file error: the
// message names the node path itself.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
