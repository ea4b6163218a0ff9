package agent

import (
	"context"
	"testing"
)

func TestNewBarrier(t *testing.T) {
	s := restoreSpec()
	if b := NewBarrier(s); b != nil {
		t.Errorf("a single member got a barrier %T", b)
	}
	s.Barrier = &BarrierSpec{Peers: []Peer{{Member: "cp2", Addr: "10.0.0.2:2390"}}}
	b := NewBarrier(s)
	if b == nil {
		t.Fatal("peers but no barrier: the node would swap alone")
	}
	if err := b.Await(context.Background()); err == nil {
		t.Error("the stub barrier let the node swap without its peers")
	}
}
