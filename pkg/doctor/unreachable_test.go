package doctor

import (
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
)

// TestUnreachable: the error names the first member's failure, and under
// NOSPACE points at the transport and the command that need no helper pod.
func TestUnreachable(t *testing.T) {
	pod := discovery.Member{Name: "cp1"}
	tests := []struct {
		name string
		ms   []*MemberFacts
		want []string
	}{
		{"nospace", []*MemberFacts{{Pod: pod, Err: errors.New("creating helper pod on node cp1: etcdserver: mvcc: database space exceeded")}},
			[]string{"(cp1: creating helper pod", "NOSPACE", "without --transport port-forward", "kubectl etcd defrag --compact --disarm"}},
		{"other", []*MemberFacts{{Pod: pod}, {Pod: discovery.Member{Name: "cp2"}, Err: errors.New("pod is not running")}},
			[]string{"no member could be reached (cp2: pod is not running)"}},
		{"no error recorded", []*MemberFacts{{Pod: pod}}, []string{"no member could be reached"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := unreachable(tt.ms)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q has no %q", err, w)
				}
			}
		})
	}
}
