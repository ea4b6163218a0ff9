package snapshot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sort"
)

// Layout of a bbolt file (go.etcd.io/bbolt, internal/common): every page
// starts with a 16-byte header, meta pages 0 and 1 hold the meta right
// after it, and branch and leaf elements are 16 bytes each.
const (
	boltPageHeaderSize = 16
	boltMetaSize       = 64
	boltMetaEnd        = boltPageHeaderSize + boltMetaSize // header plus meta
	boltMetaSumLen     = 56                                // meta bytes the checksum covers
	boltElemSize       = 16
	boltVersion        = 2
	boltBranchFlag     = 0x01
	boltLeafFlag       = 0x02
	boltBucketFlag     = 0x01 // leaf element flag: the value is a bucket
	boltBucketHdrSize  = 16   // bucket header: root pgid, sequence

	// bbolt looks for meta page 1 at 1 KiB, 2 KiB, ... 16 MiB when meta
	// page 0 is unreadable; a page size outside that range is refused.
	minBoltPageSize = 1 << 10
	maxBoltProbes   = 15
	// maxTreeDepth stops a walk through a corrupt tree that loops.
	maxTreeDepth = 64
)

// RevisionWriter is an io.Writer that the plaintext snapshot is written
// through (it never fails a write); Revision returns, after the last write,
// what Revision(path) returns for the same bytes.
//
// It never holds the whole file: it keeps the bytes of the page being read
// (a page plus its overflow pages, or a few such pages where a stale page
// header overlaps newer pages) and, for every branch or leaf page that
// passes, a fixed record of 32 bytes (see pageRec). Pages arrive in page-id
// order, not tree order, so the tree is only resolved by Revision.
//
// Every page-sized block whose header names its own page id and says
// branch or leaf is read as a page. A free page can keep a stale header
// whose overflow covers pages written since, so the stream is not walked
// from one page to the next by the overflow counts.
type RevisionWriter struct {
	off   int64 // bytes written so far
	phase int
	err   error // sticky: the bytes are not a bolt database

	head     [boltMetaEnd]byte // page 0: header and meta
	probe    [boltMetaEnd]byte // page 1, or a place it may be
	probeOff int64             // where probe is read from
	probeN   int               // probes tried in phaseProbe
	meta0    boltMeta
	// probeReason is what was wrong at every probe, or "" when it varied.
	probeReason string

	pageSize int64
	meta     boltMeta // the meta in use
	pages    uint64   // meta.pgid: the database's pages
	dbEnd    int64    // pages * pageSize

	nextBlk  uint64      // next block whose header is read
	buf      []byte      // stream bytes from bufStart on, while needed
	bufStart int64       // offset of buf[0]
	open     []candidate // pages being read, by start
	recs     []pageRec   // one per branch or leaf page read
	sorted   bool        // recs is sorted by id
	// keyElems holds, for the leaf pages that have an element named
	// "key", what that element says; a handful of pages at most.
	keyElems map[uint64]keyElem
}

const (
	phaseMeta0  = iota // reading page 0's header and meta
	phaseMeta1         // reading page 1's header and meta at pageSize
	phaseProbe         // meta page 0 is invalid: looking for meta page 1
	phaseBlocks        // reading pages
	phaseDone          // past the end of the database (a trailer, say)
)

// boltMeta is a meta page, decoded.
type boltMeta struct {
	valid    bool
	reason   string // why it is not valid
	pageSize uint32
	root     uint64
	pgid     uint64
	txid     uint64
}

// candidate is a page being read: its bytes are [start, end).
type candidate struct {
	id         uint64
	start, end int64
}

// pageRec is what is kept of a branch or leaf page: four machine words.
type pageRec struct {
	id uint64
	// a is, for a branch, the page id of the last child and, for a leaf,
	// the first 8 bytes (big-endian) of the last key.
	a uint64
	// b is, for a branch, the page id of the child a search for "key"
	// goes to; for a corrupt page, a detail of what is wrong.
	b     uint64
	count uint16
	kind  uint8
	// info is, for a leaf, recShortKey when the last key is shorter than
	// 8 bytes; for a corrupt page, what is wrong.
	info uint8
}

// pageRec kinds.
const (
	recBranch = iota + 1
	recLeaf
	recCorrupt
)

// pageRec info.
const (
	recShortKey = 1

	corruptElems   = 1 // elements do not fit in the page; b = count
	corruptKey     = 2 // a key lies outside the page; b = element index
	corruptPastEnd = 3 // the page ends past the database; b = overflow
)

// keyElem is a leaf element named "key".
type keyElem struct {
	bucket bool   // it is a bucket
	root   uint64 // the bucket's root page, 0 for an inline bucket
	// state tells what was found; for an inline bucket rev is the first
	// 8 bytes of its last key.
	state uint8
	rev   uint64
}

// keyElem states.
const (
	keOK            = iota // root, or for an inline bucket rev, is valid
	keEmpty                // an inline bucket with no keys
	keShortKey             // an inline bucket whose last key is under 8 bytes
	keBadValue             // the value lies outside the page or is too short
	keInlineBad            // the inline page's elements lie outside the value
	keInlineNotLeaf        // the inline page is not a leaf
)

var keyBucketName = []byte("key")

// NewRevisionWriter returns a writer ready for a snapshot's first byte.
func NewRevisionWriter() *RevisionWriter {
	return &RevisionWriter{keyElems: map[uint64]keyElem{}}
}

// Write implements io.Writer. It never fails: a problem with the bytes is
// kept for Revision to return.
func (w *RevisionWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && w.err == nil && w.phase != phaseDone {
		var k int
		switch w.phase {
		case phaseMeta0:
			k = w.capture(p, 0, w.head[:])
			if w.off == boltMetaEnd {
				w.gotMeta0()
			}
		case phaseMeta1, phaseProbe:
			k = w.capture(p, w.probeOff, w.probe[:])
			if w.off == w.probeOff+boltMetaEnd {
				if w.phase == phaseMeta1 {
					w.gotMeta1(parseBoltMeta(w.probe[:]))
				} else {
					w.gotProbe()
				}
			}
		case phaseBlocks:
			k = w.blockStep(p)
		}
		p = p[k:]
	}
	w.off += int64(len(p)) // bytes past the database, or after an error
	return n, nil
}

// capture copies what of p falls in [at, at+len(dst)) into dst, up to the
// end of that range, and returns how much of p it consumed.
func (w *RevisionWriter) capture(p []byte, at int64, dst []byte) int {
	stop := at + int64(len(dst))
	if w.off < at {
		stop = at
	}
	k := int64(len(p))
	if stop-w.off < k {
		k = stop - w.off
	}
	if w.off >= at {
		copy(dst[w.off-at:], p[:k])
	}
	w.off += k
	return int(k)
}

// parseBoltMeta decodes a meta page's header and meta, and validates it
// as bbolt does: magic, version, checksum.
func parseBoltMeta(b []byte) boltMeta {
	m := b[boltPageHeaderSize:boltMetaEnd]
	le := binary.LittleEndian
	r := boltMeta{
		pageSize: le.Uint32(m[8:]),
		root:     le.Uint64(m[16:]),
		pgid:     le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}
	h := fnv.New64a()
	h.Write(m[:boltMetaSumLen])
	switch {
	case le.Uint32(m[0:]) != boltMagic:
		r.reason = "bad magic"
	case le.Uint32(m[4:]) != boltVersion:
		r.reason = fmt.Sprintf("unsupported version %d", le.Uint32(m[4:]))
	case le.Uint64(m[boltMetaSumLen:]) != h.Sum64():
		r.reason = "bad checksum"
	default:
		r.valid = true
	}
	return r
}

func (w *RevisionWriter) gotMeta0() {
	w.meta0 = parseBoltMeta(w.head[:])
	if !w.meta0.valid {
		// bbolt then looks for meta page 1 at every page size it knows.
		w.phase, w.probeOff = phaseProbe, minBoltPageSize
		return
	}
	if !w.setPageSize(w.meta0.pageSize, "meta page 0") {
		return
	}
	w.phase, w.probeOff = phaseMeta1, w.pageSize
}

func (w *RevisionWriter) gotProbe() {
	m := parseBoltMeta(w.probe[:])
	if m.valid {
		if int64(m.pageSize) != w.probeOff {
			w.err = fmt.Errorf("%w: meta page 0 has %s, and the valid meta at byte %d says the page size is %d",
				ErrNotBolt, w.meta0.reason, w.probeOff, m.pageSize)
			return
		}
		if w.setPageSize(m.pageSize, "meta page 1") {
			w.gotMeta1(m)
		}
		return
	}
	switch {
	case w.probeN == 0:
		w.probeReason = m.reason
	case w.probeReason != m.reason:
		w.probeReason = ""
	}
	w.probeN++
	if w.probeN == maxBoltProbes {
		w.err = w.noMetaError()
		return
	}
	w.probeOff <<= 1
}

// noMetaError says that neither meta page is valid.
func (w *RevisionWriter) noMetaError() error {
	switch {
	case w.probeN == 0:
		return fmt.Errorf("%w: meta page 0 has %s and the stream ended before meta page 1", ErrNotBolt, w.meta0.reason)
	case w.probeReason == w.meta0.reason:
		return fmt.Errorf("%w: %s in both meta pages", ErrNotBolt, w.meta0.reason)
	case w.probeReason != "":
		return fmt.Errorf("%w: meta page 0 has %s, meta page 1 has %s", ErrNotBolt, w.meta0.reason, w.probeReason)
	}
	return fmt.Errorf("%w: meta page 0 has %s and no valid meta page 1 was found", ErrNotBolt, w.meta0.reason)
}

func (w *RevisionWriter) setPageSize(ps uint32, from string) bool {
	if ps < minBoltPageSize {
		w.err = fmt.Errorf("%w: %s says the page size is %d bytes, under the %d bbolt supports",
			ErrNotBolt, from, ps, minBoltPageSize)
		return false
	}
	w.pageSize = int64(ps)
	return true
}

// gotMeta1 picks the meta as bbolt does: the one with the higher txid if
// it is valid, else the other.
func (w *RevisionWriter) gotMeta1(m1 boltMeta) {
	a, b := w.meta0, m1
	if m1.txid > w.meta0.txid {
		a, b = m1, w.meta0
	}
	switch {
	case a.valid:
		w.meta = a
	case b.valid:
		w.meta = b
	case w.meta0.reason == m1.reason:
		w.err = fmt.Errorf("%w: %s in both meta pages", ErrNotBolt, m1.reason)
		return
	default:
		w.err = fmt.Errorf("%w: meta page 0 has %s, meta page 1 has %s", ErrNotBolt, w.meta0.reason, m1.reason)
		return
	}
	if w.meta.pgid > uint64(1<<62)/uint64(w.pageSize) {
		w.err = fmt.Errorf("%w: the meta says the database has %d pages of %d bytes, too many",
			ErrNotBolt, w.meta.pgid, w.pageSize)
		return
	}
	w.pages = w.meta.pgid
	w.dbEnd = int64(w.pages) * w.pageSize
	w.nextBlk = 2
	w.phase = phaseBlocks
}

// blockStep consumes p up to the next event: a block's header complete, or
// a page's last byte. It returns how much of p it consumed.
func (w *RevisionWriter) blockStep(p []byte) int {
	const none = int64(1<<63 - 1)
	hdr := w.nextBlk < w.pages
	var hs int64 // where the next header starts
	stop := none
	if hdr {
		hs = int64(w.nextBlk) * w.pageSize
		if w.off < hs {
			stop = hs
		} else {
			stop = hs + boltPageHeaderSize
		}
	}
	for _, c := range w.open {
		stop = min(stop, c.end)
	}
	if stop == none {
		w.phase = phaseDone
		return 0
	}
	k := min(int64(len(p)), stop-w.off)
	if len(w.open) > 0 || (hdr && w.off >= hs) {
		if len(w.buf) == 0 {
			w.bufStart = w.off
		}
		w.buf = append(w.buf, p[:k]...)
	}
	w.off += k
	if w.off != stop {
		return int(k)
	}
	for i := 0; i < len(w.open); {
		if c := w.open[i]; c.end == w.off {
			w.readPage(c.id, w.buf[c.start-w.bufStart:c.end-w.bufStart])
			w.open = append(w.open[:i], w.open[i+1:]...)
			continue
		}
		i++
	}
	if hdr && w.off == hs+boltPageHeaderSize {
		w.readHeader(w.buf[hs-w.bufStart:])
	}
	// Keep the bytes from the earliest page still being read.
	keep := w.off
	if len(w.open) > 0 {
		keep = w.open[0].start
	}
	if d := keep - w.bufStart; d > 0 && len(w.buf) > 0 {
		w.buf = w.buf[:copy(w.buf, w.buf[d:])]
		w.bufStart = keep
	}
	return int(k)
}

// readHeader reads the header of block nextBlk and, when it starts a
// branch or leaf page, starts reading that page.
func (w *RevisionWriter) readHeader(h []byte) {
	id := w.nextBlk
	w.nextBlk++
	le := binary.LittleEndian
	flags := le.Uint16(h[8:])
	if le.Uint64(h[0:]) != id || (flags != boltBranchFlag && flags != boltLeafFlag) {
		return // a meta, freelist or overflow page, or none at all
	}
	overflow := uint64(le.Uint32(h[12:]))
	if id+1+overflow > w.pages {
		w.addRec(pageRec{id: id, kind: recCorrupt, info: corruptPastEnd, b: overflow})
		return
	}
	start := int64(id) * w.pageSize
	w.open = append(w.open, candidate{id: id, start: start, end: start + int64(1+overflow)*w.pageSize})
}

func (w *RevisionWriter) addRec(r pageRec) {
	w.recs = append(w.recs, r)
	w.sorted = false
}

// pageView reads a page's elements with every access bounds-checked.
type pageView struct {
	b   []byte
	bad bool // an element or key lay outside the page
	at  uint64
}

// elemOff returns the offset of element i from the page's start.
func elemOff(i int) int { return boltPageHeaderSize + i*boltElemSize }

// key returns element i's key; posAt is where the element keeps pos.
func (v *pageView) key(i int, posAt int) []byte {
	e := elemOff(i)
	le := binary.LittleEndian
	pos := uint64(le.Uint32(v.b[e+posAt:]))
	ksize := uint64(le.Uint32(v.b[e+posAt+4:]))
	s := uint64(e) + pos
	if s+ksize > uint64(len(v.b)) {
		if !v.bad {
			v.bad, v.at = true, uint64(i)
		}
		return nil
	}
	return v.b[s : s+ksize]
}

// search finds the first element whose key is not below key, as bbolt's
// cursor does, and whether that key is equal.
func (v *pageView) search(count int, posAt int, key []byte) (int, bool) {
	var exact bool
	i := sort.Search(count, func(i int) bool {
		c := bytes.Compare(v.key(i, posAt), key)
		if c == 0 {
			exact = true
		}
		return c != -1
	})
	return i, exact
}

// readPage records a branch or leaf page read whole from the stream.
func (w *RevisionWriter) readPage(id uint64, b []byte) {
	le := binary.LittleEndian
	flags, count := le.Uint16(b[8:]), int(le.Uint16(b[10:]))
	r := pageRec{id: id, count: uint16(count)}
	if elemOff(count) > len(b) {
		r.kind, r.info, r.b = recCorrupt, corruptElems, uint64(count)
		w.addRec(r)
		return
	}
	v := &pageView{b: b}
	if flags == boltBranchFlag {
		r.kind = recBranch
		if count > 0 {
			r.a = le.Uint64(b[elemOff(count-1)+8:])
			i, exact := v.search(count, 0, keyBucketName)
			if !exact && i > 0 {
				i--
			}
			if i < count {
				r.b = le.Uint64(b[elemOff(i)+8:])
			}
		}
	} else {
		r.kind = recLeaf
		if count > 0 {
			if k := v.key(count-1, 4); len(k) >= 8 {
				r.a = binary.BigEndian.Uint64(k)
			} else {
				r.info = recShortKey
			}
			// bbolt takes the first key not below "key" and checks it.
			if i, _ := v.search(count, 4, keyBucketName); i < count && bytes.Equal(v.key(i, 4), keyBucketName) {
				w.keyElems[id] = readKeyElem(b, i)
			}
		}
	}
	if v.bad {
		r.kind, r.info, r.b = recCorrupt, corruptKey, v.at
	}
	w.addRec(r)
}

// readKeyElem reads leaf element i, whose key is "key".
func readKeyElem(b []byte, i int) keyElem {
	le := binary.LittleEndian
	e := elemOff(i)
	ke := keyElem{bucket: le.Uint32(b[e:])&boltBucketFlag != 0}
	if !ke.bucket {
		return ke
	}
	s := uint64(e) + uint64(le.Uint32(b[e+4:])) + uint64(le.Uint32(b[e+8:]))
	vsize := uint64(le.Uint32(b[e+12:]))
	if vsize < boltBucketHdrSize || s+vsize > uint64(len(b)) {
		ke.state = keBadValue
		return ke
	}
	val := b[s : s+vsize]
	ke.root = le.Uint64(val)
	if ke.root != 0 {
		return ke
	}
	// An inline bucket: a leaf page follows the bucket header.
	in := val[boltBucketHdrSize:]
	if len(in) < boltPageHeaderSize {
		ke.state = keInlineBad
		return ke
	}
	if le.Uint16(in[8:]) != boltLeafFlag {
		ke.state = keInlineNotLeaf
		return ke
	}
	count := int(le.Uint16(in[10:]))
	if count == 0 {
		ke.state = keEmpty
		return ke
	}
	if elemOff(count) > len(in) {
		ke.state = keInlineBad
		return ke
	}
	v := &pageView{b: in}
	k := v.key(count-1, 4)
	switch {
	case v.bad:
		ke.state = keInlineBad
	case len(k) < 8:
		ke.state = keShortKey
	default:
		ke.rev = binary.BigEndian.Uint64(k)
	}
	return ke
}

// Revision returns the revision of the snapshot written so far, as
// Revision(path) reads it from a file: the first 8 bytes of the last key
// of the "key" bucket, 0 when there is no such bucket or it is empty. It
// fails when the bytes are not a bbolt database it can read or when the
// stream ended before the end of the database.
func (w *RevisionWriter) Revision() (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	switch w.phase {
	case phaseMeta0:
		return 0, fmt.Errorf("the stream ended inside page 0, after %d bytes", w.off)
	case phaseMeta1:
		return 0, fmt.Errorf("the stream ended before the meta in page 1, after %d bytes (page size %d)", w.off, w.pageSize)
	case phaseProbe:
		return 0, w.noMetaError()
	}
	if w.off < w.dbEnd {
		return 0, fmt.Errorf("the stream ended inside page %d, after %d bytes of a %d-byte database (%d pages of %d bytes)",
			w.off/w.pageSize, w.off, w.dbEnd, w.pages, w.pageSize)
	}
	if !w.sorted {
		sort.Slice(w.recs, func(i, j int) bool { return w.recs[i].id < w.recs[j].id })
		w.sorted = true
	}

	// Find "key" in the root bucket, as tx.Bucket does.
	id := w.meta.root
	var ke keyElem
	for depth := 0; ; depth++ {
		r, err := w.page(id, "the root bucket", depth)
		if err != nil {
			return 0, err
		}
		if r.kind == recBranch {
			if r.count == 0 {
				return 0, fmt.Errorf("branch page %d of the root bucket has no elements", id)
			}
			id = r.b
			continue
		}
		var ok bool
		if ke, ok = w.keyElems[id]; !ok || !ke.bucket {
			return 0, nil // no key bucket
		}
		break
	}
	switch ke.state {
	case keBadValue:
		return 0, fmt.Errorf("leaf page %d: the key bucket's header lies outside the page", id)
	case keInlineBad:
		return 0, fmt.Errorf("leaf page %d: the inline key bucket's elements lie outside its value", id)
	case keInlineNotLeaf:
		return 0, fmt.Errorf("leaf page %d: the inline key bucket is not a leaf", id)
	case keEmpty, keShortKey:
		return 0, nil
	}
	if ke.root == 0 {
		return int64(ke.rev), nil
	}

	// Follow the last child down to a leaf, as Cursor.Last does.
	id = ke.root
	for depth := 0; ; depth++ {
		r, err := w.page(id, "the key bucket", depth)
		if err != nil {
			return 0, err
		}
		if r.kind == recBranch {
			if r.count == 0 {
				return 0, fmt.Errorf("branch page %d of the key bucket has no elements", id)
			}
			id = r.a
			continue
		}
		switch {
		case r.count == 0 && depth == 0:
			return 0, nil // an empty bucket
		case r.count == 0:
			return 0, fmt.Errorf("leaf page %d of the key bucket is empty", id)
		case r.info == recShortKey:
			return 0, nil
		}
		return int64(r.a), nil
	}
}

// page returns the record of page id, reached at depth in the tree of
// what (a bucket), or says why there is none.
func (w *RevisionWriter) page(id uint64, what string, depth int) (pageRec, error) {
	if depth >= maxTreeDepth {
		return pageRec{}, fmt.Errorf("%s is more than %d pages deep: the tree loops", what, maxTreeDepth)
	}
	if id < 2 {
		return pageRec{}, fmt.Errorf("%s refers to page %d, a meta page", what, id)
	}
	if id >= w.pages {
		return pageRec{}, fmt.Errorf("%s refers to page %d, past the end of the database (%d pages)", what, id, w.pages)
	}
	i := sort.Search(len(w.recs), func(i int) bool { return w.recs[i].id >= id })
	if i == len(w.recs) || w.recs[i].id != id {
		return pageRec{}, fmt.Errorf("%s refers to page %d, which is not a branch or leaf page", what, id)
	}
	r := w.recs[i]
	if r.kind != recCorrupt {
		return r, nil
	}
	switch r.info {
	case corruptElems:
		return r, fmt.Errorf("%s refers to page %d, which is corrupt: its %d elements do not fit in it", what, id, r.b)
	case corruptKey:
		return r, fmt.Errorf("%s refers to page %d, which is corrupt: the key of element %d lies outside the page", what, id, r.b)
	}
	return r, fmt.Errorf("%s refers to page %d, which is corrupt: with its %d overflow pages it ends past the end of the database (%d pages)",
		what, id, r.b, w.pages)
}
