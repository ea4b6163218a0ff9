package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// etcd's WAL, read offline for a survey: a sequence of records, each an
// 8-byte little-endian length (the top byte flags padding) and a
// walpb.Record {type, crc, data}, the crc rolling over every record's data
// (crc32 Castagnoli). The few messages needed are decoded field by field,
// so that the agent stays without etcd's server packages.
const (
	walMetadata = 1 // etcdserverpb.Metadata {NodeID 1, ClusterID 2}
	walEntry    = 2 // raftpb.Entry {Type 1, Term 2, Index 3, Data 4}
	walState    = 3 // raftpb.HardState {Term 1, Vote 2, Commit 3}
	walCRC      = 4
	walSnapshot = 5 // walpb.Snapshot {Index 1, Term 2}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walInfo is a WAL's state and the IDs in its metadata.
type walInfo struct {
	agentapi.WALState
	memberID, clusterID uint64
}

// readWAL reads every .wal file in dir in name order.
func readWAL(dir string) (*walInfo, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".wal") && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s holds no .wal file", dir)
	}
	sort.Strings(names)
	w := &walInfo{}
	w.Files = len(names)
	var crc uint32
	for i, n := range names {
		torn, err := w.readFile(filepath.Join(dir, n), &crc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if torn && i == len(names)-1 {
			w.TornTail = true
		} else if torn {
			return nil, fmt.Errorf("%s: a record is cut short before the last WAL file: the WAL is damaged", n)
		}
	}
	if w.memberID == 0 {
		return nil, fmt.Errorf("%s: no metadata record names the member", dir)
	}
	return w, nil
}

// readFile reads one WAL file's records; torn says the last was cut short.
func (w *walInfo) readFile(name string, crc *uint32) (torn bool, err error) {
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var lenBuf [8]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return true, nil
		}
		field := binary.LittleEndian.Uint64(lenBuf[:])
		if field == 0 {
			return false, nil // the preallocated rest of the file
		}
		n := field & ^(uint64(0xff) << 56)
		pad := uint64(0)
		if field>>63 == 1 {
			pad = (field >> 56) & 0x7
		}
		if n > 64<<20 {
			return true, nil
		}
		if uint64(cap(buf)) < n+pad {
			buf = make([]byte, n+pad)
		}
		buf = buf[:n+pad]
		if _, err := io.ReadFull(f, buf); err != nil {
			return true, nil
		}
		typ, rcrc, data, err := walRecord(buf[:n])
		if err != nil {
			return true, nil
		}
		if typ == walCRC {
			*crc = rcrc
			continue
		}
		*crc = crc32.Update(*crc, castagnoli, data)
		if *crc != rcrc {
			return true, nil
		}
		if err := w.apply(typ, data); err != nil {
			return false, err
		}
	}
}

func (w *walInfo) apply(typ int64, data []byte) error {
	f, err := fields(data)
	if err != nil {
		return err
	}
	switch typ {
	case walMetadata:
		w.memberID, w.clusterID = f[1], f[2]
	case walEntry:
		// A later entry at a lower index truncated the log there.
		w.LastIndex, w.LastTerm = f[3], f[2]
	case walState:
		w.Term, w.Commit = f[1], f[3]
		w.Vote = ""
		if f[2] != 0 {
			w.Vote = hexID(f[2])
		}
	case walSnapshot:
		w.SnapshotIndex = f[1]
		if w.LastIndex < f[1] {
			w.LastIndex, w.LastTerm = f[1], f[2]
		}
	}
	return nil
}

// walRecord decodes a walpb.Record.
func walRecord(b []byte) (typ int64, crc uint32, data []byte, err error) {
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, 0, nil, protowire.ParseError(m)
			}
			typ, b = int64(v), b[m:]
		case num == 2 && wt == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, 0, nil, protowire.ParseError(m)
			}
			crc, b = uint32(v), b[m:]
		case num == 3 && wt == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return 0, 0, nil, protowire.ParseError(m)
			}
			data, b = v, b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, wt, b)
			if m < 0 {
				return 0, 0, nil, protowire.ParseError(m)
			}
			b = b[m:]
		}
	}
	return typ, crc, data, nil
}

// fields is a message's varint fields by number; other fields are skipped.
func fields(b []byte) (map[protowire.Number]uint64, error) {
	out := map[protowire.Number]uint64{}
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if wt == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			out[num], b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, wt, b)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return out, nil
}
