package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// LocalExecutor runs "pod" commands as local processes, mapping the
// command name to a local binary (etcdctl to a real etcdctl). It stands in
// for the API server's exec in integration tests; the command line is
// exactly what would run in the etcd container.
type LocalExecutor struct {
	Binaries map[string]string
	// Calls records every command, for assertions.
	Calls [][]string
	mu    sync.Mutex // guards Calls: members are reached in parallel
}

// Exec implements exec.Executor.
func (l *LocalExecutor) Exec(ctx context.Context, _ exec.PodRef, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	l.mu.Lock()
	l.Calls = append(l.Calls, cmd)
	l.mu.Unlock()
	bin, ok := l.Binaries[cmd[0]]
	if !ok {
		return exec.ErrNotFound
	}
	c := osexec.CommandContext(ctx, bin, cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	err := c.Run()
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		return &exec.ExitError{Code: ee.ExitCode(), Err: err}
	}
	return err
}

// Etcdctls returns the etcdctl binaries to test with: the one pinned in
// hack/tools/etcdctl (built into dir), plus any the local cluster harness
// built for other etcd versions, keyed by version directory name.
func Etcdctls(dir string) (map[string]string, error) {
	out := map[string]string{}
	root, err := osexec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "etcdctl")
	build := osexec.Command("go", "build", "-o", bin, "go.etcd.io/etcd/etcdctl/v3")
	build.Dir = filepath.Join(strings.TrimSpace(string(root)), "hack", "tools", "etcdctl")
	if msg, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building etcdctl in %s: %v\n%s", build.Dir, err, msg)
	}
	out["pinned"] = bin
	cache := os.Getenv("HC_CACHE")
	if cache == "" {
		cache = "/var/cache/kubectl-etcd-hack"
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "bin", "etcd-*", "etcdctl"))
	sort.Strings(matches)
	for _, m := range matches {
		out[filepath.Base(filepath.Dir(m))] = m
	}
	return out, nil
}
