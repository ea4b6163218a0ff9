//go:build linux

package agent

import "syscall"

// freeBytes is the space an unprivileged write can use on dir's filesystem.
func freeBytes(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
