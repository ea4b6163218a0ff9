package restore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// DataCheck is what the restored members hold at the revision the
// restore left, before the API server wrote anything.
type DataCheck struct {
	Revision int64
	// Keys is every member's count of live keys at Revision, by member.
	Keys map[string]int64
	// Hashes is every member's hashkv at Revision, by member.
	Hashes map[string]uint32
}

// verifyData reads, on every restored member, the live keys and the
// hashkv at the snapshot's revision plus the bump: the revision the
// restore left, which the API server's writes since then do not change.
// The keys must be the snapshot's, and the hashes equal.
// verifyData reads the keys and hashkv of every planned member at the
// restored revision: readErr when a member could not be read, dataErr
// when what it holds differs from the snapshot.
func verifyData(ctx context.Context, d etcd.Transport, pods []discovery.Member, p *Plan) (dc *DataCheck, readErr, dataErr error) {
	rev := p.Snapshot.Revision + p.Bump
	dc = &DataCheck{Revision: rev, Keys: map[string]int64{}, Hashes: map[string]uint32{}}
	planned := map[string]bool{}
	for _, m := range p.Members {
		planned[m.Name] = true
	}
	var errs, reads []error
	for _, pod := range pods {
		if !planned[pod.Name] {
			continue
		}
		keys, hash, err := readAt(ctx, d, pod, rev)
		if err != nil {
			reads = append(reads, fmt.Errorf("member %s: %w", pod.Name, err))
			continue
		}
		dc.Keys[pod.Name], dc.Hashes[pod.Name] = keys, hash
		if keys != int64(p.Snapshot.Keys) {
			errs = append(errs, fmt.Errorf("member %s holds %d keys at revision %d, the snapshot %d", pod.Name, keys, rev, p.Snapshot.Keys))
		}
	}
	if len(reads) > 0 {
		return dc, errors.Join(reads...), nil
	}
	if hs := distinctHashes(dc.Hashes); len(hs) > 1 {
		errs = append(errs, fmt.Errorf("the members' hashkv at revision %d differ: %s", rev, strings.Join(hs, ", ")))
	}
	return dc, nil, errors.Join(errs...)
}

func readAt(ctx context.Context, d etcd.Transport, m discovery.Member, rev int64) (int64, uint32, error) {
	c, err := d.Client(ctx, m)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	// Every key: from "\x00" to the end of the keyspace.
	page, err := c.GetPage(ctx, etcd.PageRequest{Key: "\x00", End: "\x00", KeysOnly: true, Limit: 1, Revision: rev})
	if err != nil {
		return 0, 0, fmt.Errorf("count the keys at revision %d: %w", rev, err)
	}
	h, err := c.HashKV(ctx, rev)
	if err != nil {
		return 0, 0, fmt.Errorf("hashkv at revision %d: %w", rev, err)
	}
	return page.Count, h.Hash, nil
}

func distinctHashes(hs map[string]uint32) []string {
	by := map[uint32][]string{}
	for m, h := range hs {
		by[h] = append(by[h], m)
	}
	var out []string
	for h, ms := range by {
		sort.Strings(ms)
		out = append(out, fmt.Sprintf("%08x on %s", h, strings.Join(ms, ",")))
	}
	sort.Strings(out)
	return out
}
