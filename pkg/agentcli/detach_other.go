//go:build !unix

package agentcli

import "syscall"

func detached() *syscall.SysProcAttr { return nil }
