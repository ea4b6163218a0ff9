package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// LogReader streams a member's container log from since ago (the
// kubelet filters by its own timestamps).
type LogReader interface {
	Logs(ctx context.Context, m discovery.Member, since time.Duration) (io.ReadCloser, error)
}

var errNoLogs = errors.New("the members' logs cannot be read here")

// electionsSince is how far back the leader changes are counted.
const electionsSince = time.Hour

// electedLeader is what raft logs each time a member learns of a new
// leader ("raft.node: 8e9e05c52164694d elected leader 8e9e05c52164694d
// at term 2"), in etcd 3.4 through 3.7: one line per increment of
// etcd_server_leader_changes_seen_total.
var electedLeader = []byte(" elected leader ")

// CountElections counts the elections a member's log records. Lines are
// read one at a time; an over-long line is skipped, not an error.
func CountElections(r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	for {
		line, err := br.ReadSlice('\n')
		if bytes.Contains(line, electedLeader) {
			n++
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return n, nil
		default:
			return n, err
		}
	}
}

// readElections counts every member's elections of the last hour, from
// its log.
func readElections(ctx context.Context, lr LogReader, f *Facts) {
	parallel(len(f.Members), func(i int) {
		m := f.Members[i]
		if lr == nil {
			m.ElectionsErr = errNoLogs
			return
		}
		rc, err := lr.Logs(ctx, m.Pod, electionsSince)
		if err != nil {
			m.ElectionsErr = err
			return
		}
		defer rc.Close()
		n, err := CountElections(rc)
		m.Elections, m.ElectionsErr = &n, err
	})
}
