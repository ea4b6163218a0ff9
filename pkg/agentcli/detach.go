package agentcli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// spawnWait bounds how long start waits for the detached agent to claim
// its journal.
const spawnWait = 30 * time.Second

// spawn runs `restore sub` again as a detached process: a new session,
// stdio to the log in the journal dir, nothing tied to this exec session,
// so that it outlives the session and the plugin. It returns once the
// child has recorded its PID in the journal, the proof that it runs.
func (o *options) spawn(dir, sub string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the agent binary to run detached: %w", err)
	}
	logPath := filepath.Join(dir, agentapi.LogFile)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the agent log: %w", err)
	}
	args := []string{o.op, sub, "--root", o.root, "--journal-root", o.journalRoot, "--id", o.id}
	if o.claimToken != "" {
		args = append(args, "--claim", o.claimToken) // a released rollback's, which it finds in RollbackFile
	}
	c := exec.Command(exe, args...)
	c.Dir, c.Stdout, c.Stderr, c.SysProcAttr = "/", logf, logf, detached()
	err = c.Start()
	logf.Close()
	if err != nil {
		return fmt.Errorf("start the detached agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	jp := filepath.Join(dir, agentapi.JournalFile)
	claimed := func() bool { j, err := agentapi.LoadJournal(jp); return err == nil && j.PID == c.Process.Pid }
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(spawnWait)
	for !claimed() {
		select {
		case err := <-exited:
			if claimed() {
				break // it finished as fast as it began
			}
			return fmt.Errorf("the detached agent exited before it claimed the journal (%v); its log %s ends:\n%s", err, logPath, tail(logPath))
		case <-timeout:
			return fmt.Errorf("the detached agent (pid %d) did not claim the journal within %s; see %s", c.Process.Pid, spawnWait, logPath)
		case <-tick.C:
			continue
		}
		break
	}
	return o.printStarted(c.Process.Pid)
}

func tail(p string) string {
	b, _ := os.ReadFile(p)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(bytes.TrimSpace(b))
}
