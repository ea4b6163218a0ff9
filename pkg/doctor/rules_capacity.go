package doctor

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// Quota use above these warns, then fails: at 100% etcd raises NOSPACE
// and refuses every write.
const (
	quotaWarn = 0.80
	quotaFail = 0.95
)

func quotaOf(m *MemberFacts) int64 {
	if m.Status.DBSizeQuota > 0 {
		return m.Status.DBSizeQuota
	}
	return m.Pod.QuotaBackendBytes
}

func checkQuota(fs *Facts) []Result {
	return perMember(fs, func(m *MemberFacts) Result {
		q := quotaOf(m)
		if q <= 0 {
			return res(m.Name(), NotChecked, "", "not checked: the quota is unknown")
		}
		used := float64(m.Status.DBSize) / float64(q)
		found := fmt.Sprintf("database %s of its %s quota (%.0f%%)", humanize.IBytes(uint64(m.Status.DBSize)), humanize.IBytes(uint64(q)), used*100)
		fix := "compact and defragment (kubectl etcd defrag --compact), or raise --quota-backend-bytes (8 GiB at most is etcd's advice)"
		switch {
		case used >= quotaFail:
			return res(m.Name(), Fail, fix, "%s: writes stop at 100%%", found)
		case used >= quotaWarn:
			return res(m.Name(), Warn, fix, "%s", found)
		}
		return ok(m.Name(), "%s", found)
	})
}

// Free space below these is not worth a defragmentation.
const (
	fragMinFree  = 100 << 20
	fragMinRatio = 0.5
)

func checkFragmentation(fs *Facts) []Result {
	return perMember(fs, func(m *MemberFacts) Result {
		size, inUse := m.Status.DBSize, m.Status.DBSizeInUse
		if size <= 0 {
			return ok(m.Name(), "empty database")
		}
		free := size - inUse
		ratio := float64(free) / float64(size)
		found := fmt.Sprintf("%s of %s in use, %s (%.0f%%) free inside the file", humanize.IBytes(uint64(inUse)), humanize.IBytes(uint64(size)), humanize.IBytes(uint64(max(free, 0))), ratio*100)
		if free >= fragMinFree && ratio >= fragMinRatio {
			return res(m.Name(), Warn, "defragment to give it back and lower the quota use: kubectl etcd defrag", "%s", found)
		}
		return ok(m.Name(), "%s", found)
	})
}

func checkAlarms(fs *Facts) []Result {
	if fs.ListErr != nil {
		return []Result{notChecked("", fs.ListErr)}
	}
	var out []Result
	for _, a := range fs.Alarms {
		name := etcd.HexID(a.MemberID)
		for _, m := range fs.Members {
			if m.Status != nil && m.Status.MemberID == a.MemberID {
				name = m.Name()
			}
		}
		fix := "the members' data differ: see consistency.hashkv and etcd's data corruption guide, then kubectl etcd alarm disarm"
		if a.Type == "NOSPACE" {
			fix = "writes are refused: kubectl etcd defrag --compact --disarm"
		}
		out = append(out, res(name, Fail, fix, "alarm %s raised", a.Type))
	}
	if len(out) == 0 {
		out = append(out, ok("", "no alarm raised"))
	}
	return out
}

// Retained history above maxHistory at the current write rate, and
// above minHistoryRevs revisions, means nothing compacts: the Kubernetes
// API server compacts every 5 minutes.
const (
	maxHistory     = time.Hour
	minHistoryRevs = 10000
)

func checkCompaction(fs *Facts) []Result {
	return perMember(fs, func(m *MemberFacts) Result {
		if m.Hash == nil {
			return notChecked(m.Name(), errOr(m.HashErr, "the compacted revision is unknown (it comes with consistency.hashkv)"))
		}
		rev, compacted := m.Status.Revision, max(m.Hash.CompactRevision, 0) // -1: never
		if m.Later != nil {
			rev = m.Later.Revision
		}
		kept := rev - compacted
		found := fmt.Sprintf("revision %d, compacted at %d: %d revisions of history", rev, compacted, kept)
		if compacted == 0 {
			found = fmt.Sprintf("revision %d, never compacted", rev)
		}
		fix := "nothing compacts: check the API server's --etcd-compaction-interval (default 5m) or etcd's --auto-compaction-retention, or run kubectl etcd compact"
		if kept < minHistoryRevs {
			return ok(m.Name(), "%s", found)
		}
		if m.Later == nil || m.Elapsed <= 0 {
			if compacted == 0 {
				return res(m.Name(), Warn, fix, "%s", found)
			}
			return ok(m.Name(), "%s", found)
		}
		rate := float64(m.Later.Revision-m.Status.Revision) / m.Elapsed.Seconds()
		if rate <= 0 {
			if compacted == 0 {
				return res(m.Name(), Warn, fix, "%s", found)
			}
			return ok(m.Name(), "%s, no writes in the window", found)
		}
		span := time.Duration(float64(kept) / rate * float64(time.Second))
		found = fmt.Sprintf("%s, about %s at %.1f writes/s", found, span.Round(time.Minute), rate)
		if span > maxHistory {
			return res(m.Name(), Warn, fix, "%s", found)
		}
		return ok(m.Name(), "%s", found)
	})
}
