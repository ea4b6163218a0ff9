package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/par"
)

// LogReader streams a member's container log from since ago (the
// kubelet filters by its own timestamps), each line led by its
// timestamp.
type LogReader interface {
	Logs(ctx context.Context, m discovery.Member, since time.Duration) (io.ReadCloser, error)
}

var errNoLogs = errors.New("the members' logs cannot be read here")

// electionsSince is how far back the leader changes are counted.
const electionsSince = time.Hour

// What raft logs each time a member learns of a new leader, in etcd 3.4
// through 3.7: "raft.node: 8e9e05c52164694d elected leader
// 8e9e05c52164694d at term 2" after a time without one, "raft.node: ...
// changed leader from 8e9e... to 1c4b... at term 7" straight from
// another. Each is one increment of etcd_server_leader_changes_seen_total.
var leaderLines = [][]byte{[]byte(" elected leader "), []byte(" changed leader from ")}

// LogElections is what a member's log says of the leader changes.
type LogElections struct {
	// Count is the lines that record a new leader.
	Count int64
	// From is the first line's time (zero: the log had no line). A log
	// rotated within the hour begins later than the hour.
	From time.Time
}

// CountElections counts the leader changes in a log whose lines begin
// with the kubelet's RFC 3339 timestamp (kubectl logs --timestamps).
// Lines are read in pieces of at most 64 KiB; raft's are far shorter.
func CountElections(r io.Reader) (LogElections, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var e LogElections
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if first && len(line) > 0 {
			first = false
			if ts, _, ok := bytes.Cut(line, []byte(" ")); ok {
				e.From, _ = time.Parse(time.RFC3339Nano, string(ts))
			}
		}
		for _, l := range leaderLines {
			if bytes.Contains(line, l) {
				e.Count++
				break
			}
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return e, nil
		default:
			return e, err
		}
	}
}

// logTimeout bounds one member's log read: a kubelet that does not
// answer must not hold up the rest of the check.
const logTimeout = 30 * time.Second

// readElections counts every member's elections of the last hour, from
// its log.
func readElections(ctx context.Context, lr LogReader, f *Facts) {
	par.Each(len(f.Members), func(i int) {
		m := f.Members[i]
		if lr == nil {
			m.ElectionsErr = errNoLogs
			return
		}
		ctx, cancel := context.WithTimeout(ctx, logTimeout)
		defer cancel()
		rc, err := lr.Logs(ctx, m.Pod, electionsSince)
		if err != nil {
			m.ElectionsErr = err
			return
		}
		defer rc.Close()
		e, err := CountElections(rc)
		if err != nil {
			m.ElectionsErr = fmt.Errorf("reading the log of pod %s: %w", m.Pod.Pod, err)
			return
		}
		m.Elections = &e
	})
}
