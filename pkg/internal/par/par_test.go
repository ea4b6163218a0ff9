package par

import (
	"sync"
	"testing"
	"time"
)

// Every index runs once, and all of them at the same time: each call
// waits until every call has started.
func TestEach(t *testing.T) {
	const n = 8
	var mu sync.Mutex
	seen := map[int]int{}
	var started sync.WaitGroup
	started.Add(n)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	Each(n, func(i int) {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		started.Done()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Errorf("call %d: the others did not run beside it", i)
		}
	})
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("index %d ran %d times", i, seen[i])
		}
	}
}
