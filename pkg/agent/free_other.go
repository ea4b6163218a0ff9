//go:build !linux

package agent

// freeBytes is unknown off Linux, where the agent does not run.
func freeBytes(string) (uint64, bool) { return 0, false }
