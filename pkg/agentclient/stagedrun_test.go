package agentclient

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// StagedRun's script, run by this machine's sh: the bytes on stdin are
// checked against the sha256 before they run, kept 0500, and an earlier
// attempt's copy is replaced; damaged bytes never run.
func TestStagedRun(t *testing.T) {
	agent := []byte("#!/bin/sh\necho ran \"$@\"\n")
	a := Binary{Path: "agent", SHA256: fmt.Sprintf("%x", sha256.Sum256(agent))}
	cmd, staged := StagedRun(a, "snapshot", "--listen", "127.0.0.1:0")
	if staged.Exe != "/scratch/"+a.SHA256 || cmd[0] != "sh" || cmd[4] != staged.Exe || cmd[5] != a.SHA256 || strings.Join(cmd[6:], " ") != "snapshot --listen 127.0.0.1:0" {
		t.Fatalf("command %q, staged %+v", cmd, staged)
	}
	dst := filepath.Join(t.TempDir(), a.SHA256)
	run := func(stdin []byte, sum string) (string, string, error) {
		args := append([]string{cmd[1], cmd[2], cmd[3], dst, sum}, cmd[6:]...)
		c := exec.Command("sh", args...)
		var out, errb bytes.Buffer
		c.Stdin, c.Stdout, c.Stderr = bytes.NewReader(stdin), &out, &errb
		err := c.Run()
		return out.String(), errb.String(), err
	}
	for range 2 { // the second replaces the first's 0500 copy
		out, errOut, err := run(agent, a.SHA256)
		if err != nil || out != "ran snapshot --listen 127.0.0.1:0\n" {
			t.Fatalf("out %q, stderr %q, %v", out, errOut, err)
		}
		if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o500 {
			t.Errorf("staged %v, %v; want 0500", st.Mode(), err)
		}
	}
	damaged := append([]byte{}, agent...)
	damaged[len(damaged)-2] = 'X'
	out, errOut, err := run(damaged, a.SHA256)
	var exit *exec.ExitError
	if out != "" || !strings.Contains(errOut, "the agent arrived damaged in "+dst) || !errors.As(err, &exit) || exit.ExitCode() != 97 {
		t.Errorf("damaged: out %q, stderr %q, %v", out, errOut, err)
	}
}
