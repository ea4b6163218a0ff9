// Command kubectl_complete-etcd lets kubectl complete "kubectl etcd <TAB>".
//
// kubectl 1.26+ runs kubectl_complete-<plugin> with the words typed after
// the plugin name, the last one being the word to complete. This shim hands
// them to kubectl-etcd's hidden __complete command, which prints cobra's
// completions in the form kubectl reads. It stays tiny: it only finds
// kubectl-etcd, next to itself first, then on PATH.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

func main() {
	bin, err := pluginPath()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl_complete-etcd: %v\n", err)
		os.Exit(1)
	}
	cmd := exec.Command(bin, append([]string{"__complete"}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			os.Exit(exitErr.ExitCode())
		}
		fmt.Fprintf(os.Stderr, "kubectl_complete-etcd: %v\n", err)
		os.Exit(1)
	}
}

// pluginPath prefers the kubectl-etcd beside this executable, so that an
// archive unpacked anywhere completes with its own version.
func pluginPath() (string, error) {
	name := "kubectl-etcd"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if self, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			self = real
		}
		if p := filepath.Join(filepath.Dir(self), name); isFile(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found beside this program or on PATH: install kubectl-etcd first", name)
	}
	return p, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
