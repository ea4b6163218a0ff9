package etcd

import (
	"reflect"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

func TestCandidates(t *testing.T) {
	no, yes := false, true
	ms := []discovery.Member{
		{Node: "a", Running: false, NodeReady: &yes},
		{Node: "b", Running: true, NodeReady: &no},
		{Node: "c", Running: true, NodeReady: &yes},
		{Node: "c", Running: true, NodeReady: &yes},
		{Node: "d", Running: true},
	}
	var got []string
	for _, m := range candidates(ms) {
		got = append(got, m.Node)
	}
	if want := []string{"c", "d", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("candidates = %v, want %v", got, want)
	}
}
