package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ReleaseURL is where GitHub serves an archive goreleaser names
// kubectl-etcd_{{ .Tag }}_{{ .Os }}_{{ .Arch }}.
func ReleaseURL(tag, goos, arch string) string {
	ext := "tar.gz"
	if goos == "windows" {
		ext = "zip"
	}
	return fmt.Sprintf("https://github.com/kubectl-etcd/kubectl-etcd/releases/download/%s/kubectl-etcd_%s_%s_%s.%s", tag, tag, goos, arch, ext)
}

// Unpack extracts a .tar.gz or .zip archive into dir, as krew does.
func Unpack(archive, dir string) error {
	if strings.HasSuffix(archive, ".zip") {
		return unzip(archive, dir)
	}
	return untargz(archive, dir)
}

func untargz(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", archive, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := writeFile(dir, h.Name, os.FileMode(h.Mode), tr); err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
	}
}

func unzip(archive, dir string) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
		err = writeFile(dir, zf.Name, zf.Mode(), rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
	}
	return nil
}

func writeFile(dir, name string, mode os.FileMode, r io.Reader) error {
	dst := filepath.Join(dir, filepath.FromSlash(name))
	if !strings.HasPrefix(dst, filepath.Clean(dir)+string(filepath.Separator)) {
		return fmt.Errorf("entry %q leaves the archive", name)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Install applies a platform's file operations to an unpacked archive the
// way krew does, into installDir, and returns the path of bin there.
func Install(pl Platform, unpacked, installDir string) (string, error) {
	for _, op := range pl.Files {
		matches, err := filepath.Glob(filepath.Join(unpacked, filepath.FromSlash(op.From)))
		if err != nil {
			return "", err
		}
		if len(matches) == 0 {
			return "", fmt.Errorf("files: %q is not in the archive", op.From)
		}
		to := filepath.Join(installDir, filepath.FromSlash(op.To))
		if err := os.MkdirAll(to, 0o755); err != nil {
			return "", err
		}
		for _, m := range matches {
			if err := os.Rename(m, filepath.Join(to, filepath.Base(m))); err != nil {
				return "", err
			}
		}
	}
	bin := filepath.Join(installDir, filepath.FromSlash(pl.Bin))
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("bin %q is not installed by files: %w", pl.Bin, err)
	}
	return bin, nil
}
