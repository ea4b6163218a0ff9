package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// fillFromManifest completes a script-mode spec from the node's etcd
// manifest: the plugin that wrote it could not read the pods.
func fillFromManifest(s *agentapi.RestoreSpec, dataDir, image string) {
	if s.SnapshotRestore == nil {
		return
	}
	if s.OldDataDir == "" {
		s.OldDataDir = path.Clean(dataDir)
	}
	if s.NewDataDir == "" {
		s.NewDataDir = agentapi.RestoredDataDir(s.OldDataDir, s.ID)
	}
	if s.AgentImage == "" {
		s.AgentImage = image
	}
}

// checkSnapshotRestore checks the staged snapshot before anything changes.
func checkSnapshotRestore(root string, s *agentapi.RestoreSpec) error {
	r := s.SnapshotRestore
	if _, err := os.Lstat(under(root, s.NewDataDir)); err == nil {
		return fmt.Errorf("the new data dir %s exists already: a restore never writes over a data dir; move it away, or restore with another id", s.NewDataDir)
	}
	got, err := agentapi.FileSHA256(under(root, r.Snapshot))
	if err != nil {
		return fmt.Errorf("the staged snapshot: %w", err)
	}
	if got != r.SHA256 {
		return fmt.Errorf("the staged snapshot %s has sha256 %s, the plan's is %s: copy the snapshot again", r.Snapshot, got, r.SHA256)
	}
	return nil
}

// Runner runs a command and returns its combined output.
type Runner func(ctx context.Context, env []string, argv ...string) ([]byte, error)

// ExecRunner runs commands as processes of the agent's container.
func ExecRunner(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

// restoreTool is etcdutl where the image has it (3.6+), else etcdctl
// (3.5 images have no etcdutl).
func restoreTool(look func(string) (string, error)) (string, []string, error) {
	if p, err := look("etcdutl"); err == nil {
		return p, nil, nil
	}
	if p, err := look("etcdctl"); err == nil {
		return p, []string{"ETCDCTL_API=3"}, nil
	}
	return "", nil, errors.New("neither etcdutl nor etcdctl is in the agent's image: the agent's static pod must run etcd's own image")
}

// snapshotRestoreStep restores the snapshot into the new data dir. A dir
// left by an interrupted attempt is moved aside, never deleted, before the
// retry. Its undo keeps the restored dir: it is not the cluster's data.
func snapshotRestoreStep(s *agentapi.RestoreSpec, env RestoreEnv) Step {
	r := s.SnapshotRestore
	return Step{
		Name:   agentapi.StepRestoreData,
		Detail: "with etcdutl from etcd's own image, etcdctl on 3.5; nothing is stopped yet",
		Do: func(ctx context.Context) error {
			dst := under(env.Root, s.NewDataDir)
			if _, err := os.Stat(under(env.Root, r.Snapshot)); err != nil {
				return fmt.Errorf("the staged snapshot is not there (%w): it is removed once restored from, so a restore resumed after that cannot redo this step; roll it back and run the scripts again", err)
			}
			if _, err := os.Lstat(dst); err == nil {
				aside := fmt.Sprintf("%s.incomplete-%d", dst, time.Now().Unix())
				if err := os.Rename(dst, aside); err != nil {
					return fmt.Errorf("move the incomplete %s aside: %w", s.NewDataDir, err)
				}
			}
			look := env.LookPath
			if look == nil {
				look = exec.LookPath
			}
			tool, toolEnv, err := restoreTool(look)
			if err != nil {
				return err
			}
			run := env.Run
			if run == nil {
				run = ExecRunner
			}
			argv := append([]string{tool, "snapshot", "restore", under(env.Root, r.Snapshot)}, r.Flags...)
			argv = append(argv, "--data-dir="+dst)
			out, err := run(ctx, toolEnv, argv...)
			// The staged snapshot is the backup's plaintext (every Secret):
			// it goes once the data is restored from it, and when that
			// failed too (a failure here rolls the restore back: the
			// scripts are run again, and stage it again).
			rmErr := removeStaged(env.Root, r.Snapshot)
			if err != nil {
				return errors.Join(fmt.Errorf("%s snapshot restore: %w: %s", path.Base(tool), err, strings.TrimSpace(lastLines(string(out), 5))), rmErr)
			}
			return rmErr
		},
		// A restore that never got past this point leaves no plaintext.
		Undo: func(context.Context) error { return removeStaged(env.Root, r.Snapshot) },
	}
}

// removeStaged removes the staged snapshot, which may be gone already.
func removeStaged(root, snapshot string) error {
	if err := os.Remove(under(root, snapshot)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the staged snapshot %s (it holds every Secret in plain text): %w", snapshot, err)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
