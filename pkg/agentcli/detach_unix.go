//go:build unix

package agentcli

import "syscall"

// detached puts the child in a new session: no controlling terminal, and
// no signal sent to this process group reaches it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
