package etcd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Names reports whether want, a --member value, names the member with
// this etcd name, node, pod and ID: one of the first three exactly, or
// the ID in hex (0x optional, any case; an ID of 0 is not known yet).
// It is the one meaning of --member in every command.
func Names(want, name, node, pod string, id uint64) bool {
	if want == "" {
		return false
	}
	if want == name || want == node || want == pod {
		return true
	}
	if id == 0 {
		return false
	}
	h, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(want), "0x"), 16, 64)
	return err == nil && h == id
}

// NoSuchMember is the error of a --member value that names no member.
func NoSuchMember(want string) error {
	return hint.Permanent(fmt.Errorf("no member named %q or with ID %q", want, want),
		"name a member by its name, node, pod or hex ID: see kubectl etcd members")
}
