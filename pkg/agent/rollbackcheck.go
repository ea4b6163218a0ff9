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
)

// RollbackCheck is what one node knows about rolling back one restore:
// where etcd would go back to, and why a rollback would be refused there.
// `restore status` reports it for every journal, so that the plugin can
// refuse on every node before it changes anything on any; `restore
// rollback` checks again before it acts.
type RollbackCheck struct {
	// OldDataDir is the data dir the old manifest points etcd at.
	OldDataDir string `json:"oldDataDir,omitempty"`
	// OldDataWritten is when etcd last wrote the old data (its newest
	// file in member/snap and member/wal); zero when that data is gone.
	OldDataWritten *time.Time `json:"oldDataWritten,omitempty"`
	// Refused says why a rollback would lead somewhere worse than where
	// the node is, and what to do instead; empty when it may go ahead.
	Refused string `json:"refused,omitempty"`
}

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
func CheckRollback(root string, j *Journal, others []*Journal) RollbackCheck {
	var spec RestoreSpec
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		return RollbackCheck{Refused: fmt.Sprintf("the journal holds no readable spec (%v): roll back by hand from its moves", err)}
	}
	c := RollbackCheck{OldDataDir: spec.OldDataDir}
	if j.Phase == PhaseRolledBack {
		c.Refused = "it is rolled back already"
		return c
	}
	for _, o := range others {
		if o.ID != j.ID && o.Operation == RestoreOperation && o.Phase == PhaseDone && o.Created.After(j.Created) {
			c.Refused = fmt.Sprintf("restore %s, done after this one, runs here: roll that one back first (kubectl etcd restore --rollback --id %s), then this one", o.ID, o.ID)
			return c
		}
	}
	// An interrupted rollback resumes: it was checked when it began, and
	// etcd may already run on the old data again.
	resuming := j.Phase == PhaseRollingBack
	swap := stepRecord(j, StepSwap)
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
	if swap != nil && (swap.State == Done || swap.State == Running) {
		live := path.Join(spec.StaticPodDir, EtcdManifest)
		want, err := os.ReadFile(under(root, path.Join(spec.JournalDir, RestoredManifest)))
		if err != nil {
			c.Refused = fmt.Sprintf("the manifest this restore wrote is gone from its journal dir (%v): compare %s by hand", err, live)
			return c
		}
		got, err := os.ReadFile(under(root, live))
		switch {
		case err != nil && swap.State == Running:
			// The swap may not have written it yet: the undo copes.
		case err != nil:
			c.Refused = fmt.Sprintf("%s is gone (%v), so etcd does not run from the manifest this restore wrote: find out what moved it before you roll back", live, err)
		case !bytes.Equal(got, want):
			c.Refused = fmt.Sprintf("%s is no longer the manifest this restore wrote (it was edited since, or a later restore wrote it): a rollback would discard that change. Put back %s to roll back, or undo the edit by hand",
				live, path.Join(spec.JournalDir, RestoredManifest))
		}
	}
	return c
}

// writeSlack is how long after the swap began a write to the old data is
// still taken for the old etcd's own last one.
const writeSlack = 5 * time.Second

func stepRecord(j *Journal, name string) *StepRecord {
	for i := range j.Steps {
		if j.Steps[i].Name == name {
			return &j.Steps[i]
		}
	}
	return nil
}

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

// LoadJournals reads every journal under base, one dir per id, sorted by
// id; a dir without a journal (a start that failed early) is skipped.
func LoadJournals(base string) ([]*Journal, error) {
	ents, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the journals: %w", err)
	}
	var out []*Journal
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		j, err := LoadJournal(filepath.Join(base, e.Name(), JournalFile))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", e.Name(), err)
		}
		out = append(out, j)
	}
	return out, nil
}
