package doctor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// A snapshot older than these warns, then fails.
const (
	backupWarn = 24 * time.Hour
	backupFail = 7 * 24 * time.Hour
)

// ReadBackupDir finds the newest snapshot in dir (by the time in its
// metadata, else the file's) and verifies it: a plain one by its
// trailer hash, an encrypted one against the sha256 in its metadata.
func ReadBackupDir(dir string) *BackupFacts {
	b := &BackupFacts{Dir: dir}
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Err = err
		return b
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".part") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		t, ok := snapshotTime(path, e)
		if ok && t.After(b.Time) {
			b.Newest, b.Time = path, t
		}
	}
	if b.Newest != "" {
		b.VerifyErr, b.Unverifiable = verifyBackup(b.Newest)
	}
	return b
}

// snapshotTime is when the snapshot at path was taken; files that are
// neither a snapshot with metadata nor a plain snapshot are not.
func snapshotTime(path string, e os.DirEntry) (time.Time, bool) {
	if md, err := snapshot.ReadMetadata(snapshot.MetadataPath(path)); err == nil && !md.Time.IsZero() {
		return md.Time, true
	}
	info, err := e.Info()
	if err != nil || !(strings.HasSuffix(path, ".db") || snapshot.HasTrailer(info.Size())) {
		return time.Time{}, false
	}
	return info.ModTime(), true
}

func verifyBackup(path string) (verifyErr error, unverifiable string) {
	f, err := os.Open(path)
	if err != nil {
		return err, ""
	}
	defer f.Close()
	enc, r, err := snapshot.IsEncrypted(f)
	if err != nil {
		return err, ""
	}
	if !enc {
		_, err := snapshot.VerifyReader(r)
		return err, ""
	}
	md, err := snapshot.ReadMetadata(snapshot.MetadataPath(path))
	if err != nil || md.SHA256 == "" {
		return nil, "encrypted, and no metadata holds its sha256; verify it with kubectl etcd snapshot verify --identity"
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err, ""
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != md.SHA256 {
		return fmt.Errorf("its sha256 %s is not the %s its metadata recorded", got, md.SHA256), ""
	}
	return nil, ""
}

func checkBackupAge(fs *Facts) []Result {
	b := fs.Backup
	switch {
	case b == nil:
		return []Result{res("", NotChecked, "", "not checked: give --backup-dir DIR")}
	case b.Err != nil:
		return []Result{res("", Fail, "point --backup-dir at the directory kubectl etcd backup writes to", "reading %s: %s", b.Dir, hint.OneLine(b.Err.Error()))}
	case b.Newest == "":
		return []Result{res("", Fail, "take one now (kubectl etcd backup "+filepath.Join(b.Dir, "etcd.db")+") and schedule it", "no snapshot in %s", b.Dir)}
	}
	age := fs.Now.Sub(b.Time)
	found := fmt.Sprintf("newest snapshot %s is %s old", filepath.Base(b.Newest), days(age))
	fix := "back up at least daily: kubectl etcd backup in a cron job"
	switch {
	case age > backupFail:
		return []Result{res("", Fail, fix, "%s", found)}
	case age > backupWarn:
		return []Result{res("", Warn, fix, "%s", found)}
	}
	return []Result{ok("", "%s", found)}
}

func checkBackupVerify(fs *Facts) []Result {
	b := fs.Backup
	switch {
	case b == nil || b.Err != nil || b.Newest == "":
		return []Result{res("", NotChecked, "", "not checked: no snapshot to verify (see backups.newest)")}
	case b.Unverifiable != "":
		return []Result{res("", NotChecked, "", "not checked: %s", b.Unverifiable)}
	case b.VerifyErr != nil:
		return []Result{res("", Fail, "the snapshot is damaged: take a new one and check the storage it is kept on", "%s does not verify: %s", filepath.Base(b.Newest), hint.OneLine(b.VerifyErr.Error()))}
	}
	return []Result{ok("", "%s verifies", filepath.Base(b.Newest))}
}
