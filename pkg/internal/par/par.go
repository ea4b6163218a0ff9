// Package par runs work side by side: the one parallel helper of the
// members' and nodes' rounds.
package par

import "sync"

// Each calls f(0) … f(n-1) at once and returns when every call has.
func Each(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}
