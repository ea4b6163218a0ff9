package keyspace

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
)

// chunk is a part of a parallel walk's range not read yet, [start, end),
// with the window prefix length learnt by the worker that left it.
type chunk struct {
	start, end string
	k          int
}

// walkParallel walks q's range with l.Parallel workers at one revision.
// Each worker reads one window at a time (see walkRange) and leaves the
// rest of its range to the next free worker, so that the range splits
// where the keys are, not where a guess put them. The pages reach fn one
// at a time; each worker holds at most one page that fn has not taken.
func (l *Live) walkParallel(ctx context.Context, q Query, fn func(Page) error) (Result, error) {
	key, end := q.ends()
	res := Result{Revision: q.Revision}
	if res.Revision == 0 {
		// One key's read pins the revision: a range would count every
		// key in it.
		p, err := l.Client.GetPage(ctx, etcd.PageRequest{Key: key, KeysOnly: true, Serializable: l.Serializable})
		if err != nil {
			return res, fmt.Errorf("reading the revision: %w", err)
		}
		res.Revision = p.Revision
	}
	q.Revision = res.Revision
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := newChunks(chunk{start: key, end: end, k: len(key) + 1})
	pages := make(chan Page)
	g, gctx := errgroup.WithContext(ctx)
	counts := make([]int64, l.Parallel)
	for i := range l.Parallel {
		g.Go(func() error {
			err := l.worker(gctx, q, work, &counts[i], pages)
			if err != nil {
				work.abort()
			}
			return err
		})
	}
	go func() { g.Wait(); close(pages) }()
	var ferr error
	for p := range pages {
		if ferr == nil {
			if ferr = fn(p); ferr != nil {
				cancel()
				work.abort()
			}
		}
	}
	err := g.Wait()
	for _, n := range counts {
		res.Keys += n
	}
	switch {
	case ferr == Stop:
		return res, nil
	case ferr != nil:
		return res, ferr
	}
	return res, err
}

// worker walks chunks until none is left, adding to *keys.
func (l *Live) worker(ctx context.Context, q Query, work *chunks, keys *int64, pages chan<- Page) error {
	pg := l.pager(q)
	send := func(p Page) error {
		select {
		case pages <- p:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	key, _ := q.ends()
	for {
		c, ok := work.take()
		if !ok {
			return nil
		}
		var part Result
		w := &window{min: len(key), k: c.k}
		err := l.walkRange(ctx, q, l.request(q, c.start, c.end), w, pg, &part, send, work.put)
		*keys += part.Keys
		work.done()
		if err != nil {
			return err
		}
		pg.newWindow()
	}
}

// chunks is a parallel walk's queue of ranges left. It is finished when
// it is empty and no worker walks a chunk, since a worker may leave one.
type chunks struct {
	mu      sync.Mutex
	cond    *sync.Cond
	left    []chunk
	busy    int
	stopped bool
}

func newChunks(first chunk) *chunks {
	c := &chunks{left: []chunk{first}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// take is the next chunk to walk; false: none is left.
func (c *chunks) take() (chunk, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.left) == 0 && c.busy > 0 && !c.stopped {
		c.cond.Wait()
	}
	if len(c.left) == 0 || c.stopped {
		c.cond.Broadcast()
		return chunk{}, false
	}
	ch := c.left[len(c.left)-1]
	c.left = c.left[:len(c.left)-1]
	c.busy++
	return ch, true
}

func (c *chunks) put(ch chunk) {
	c.mu.Lock()
	c.left = append(c.left, ch)
	c.mu.Unlock()
	c.cond.Signal()
}

// done says a taken chunk is walked.
func (c *chunks) done() {
	c.mu.Lock()
	c.busy--
	c.mu.Unlock()
	c.cond.Broadcast()
}

// abort wakes the waiting workers for good.
func (c *chunks) abort() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.cond.Broadcast()
}
