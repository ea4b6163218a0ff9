package agentclient

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// ArchBinary is one architecture's agent binary, for a script dir.
type ArchBinary struct {
	Arch, Path, SHA256 string
}

// ForScript finds every agent binary in dir, by the architecture its
// ELF header names: a node script picks by `uname -m` on the node.
func ForScript(dir string) ([]ArchBinary, error) {
	var out []ArchBinary
	seen := map[string]bool{}
	for _, name := range []string{Name + "-linux-amd64", Name + "-linux-arm64", Name} {
		p := filepath.Join(dir, name)
		arch, err := ELFArch(p)
		if err != nil || seen[arch] {
			continue
		}
		sha, err := agentapi.FileSHA256(p)
		if err != nil {
			return nil, err
		}
		seen[arch] = true
		out = append(out, ArchBinary{Arch: arch, Path: p, SHA256: sha})
	}
	if len(out) == 0 {
		_, err := Find(dir, "amd64", nil)
		return nil, err
	}
	return out, nil
}

// dynamicELF says whether p is an ELF executable that needs a dynamic
// loader; anything else (not ELF, unreadable) is not.
func dynamicELF(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// ELFArch is the GOARCH of a linux executable.
func ELFArch(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("%s is for %s", p, f.Machine)
}

// CopyAgents copies each agent into dir as Name-linux-<arch>, 0755,
// synced: a script dir copied to a node at once holds whole binaries.
func CopyAgents(dir string, agents []ArchBinary) error {
	for _, a := range agents {
		if err := copyFile(a.Path, filepath.Join(dir, Name+"-linux-"+a.Arch), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, in)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
