package etcd

import "testing"

// One meaning of --member everywhere: a member's name, node or pod, or
// its hex ID in any case, with or without 0x.
func TestNames(t *testing.T) {
	const id = 0x8e9e05c52164694d
	for _, tt := range []struct {
		want string
		ok   bool
	}{
		{"hc-cp1", true}, {"node-1", true}, {"etcd-hc-cp1", true},
		{"8e9e05c52164694d", true}, {"0x8E9E05C52164694D", true},
		{"", false}, {"hc-cp", false}, {"8e9e05c5216469", false}, {"zz", false},
	} {
		if got := Names(tt.want, "hc-cp1", "node-1", "etcd-hc-cp1", id); got != tt.ok {
			t.Errorf("Names(%q) = %t, want %t", tt.want, got, tt.ok)
		}
	}
	if Names("0", "a", "b", "c", 0) {
		t.Error("an unknown ID (0) matched")
	}
}
