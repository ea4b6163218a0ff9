package nodepod

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Upload streams r into dst inside the pod and checks that the file's
// sha256 matches what was sent. dst is created 0600 from its first byte
// (umask 077): it may be a decrypted snapshot. The shell stays alive after cat and
// prints the digest: CRI runtimes close exec stdin as soon as the exec'd
// process closes stdout (containerd #13934), so a bare `cat > f` would
// truncate, and only a digest proves the file whole.
func (p *Pod) Upload(ctx context.Context, r io.Reader, dst string) (string, error) {
	return p.upload(ctx, r, dst, `umask 077 && cat > "$1" && sync "$1" 2>/dev/null; sha256sum "$1"`)
}

// UploadExecutable is Upload for a program that runs in the pod: it
// becomes 0500, in the same exec, and is not synced, since it lives in
// the pod's scratch dir and goes with it.
func (p *Pod) UploadExecutable(ctx context.Context, r io.Reader, dst string) (string, error) {
	return p.upload(ctx, r, dst, `umask 077 && cat > "$1" && chmod 0500 "$1"; sha256sum "$1"`)
}

func (p *Pod) upload(ctx context.Context, r io.Reader, dst, script string) (string, error) {
	h := sha256.New()
	var out, errb bytes.Buffer
	cmd := []string{"sh", "-c", script, "upload", dst}
	if err := p.Exec(ctx, cmd, io.TeeReader(r, h), &out, &errb); err != nil {
		return "", fmt.Errorf("uploading to %s on node %s: %w %s", dst, p.Node, err, strings.TrimSpace(errb.String()))
	}
	want := hex.EncodeToString(h.Sum(nil))
	got, _, _ := strings.Cut(strings.TrimSpace(out.String()), " ")
	if got != want {
		return "", fmt.Errorf("upload to %s on node %s arrived damaged: sha256 %s there, %s sent", dst, p.Node, got, want)
	}
	return want, nil
}

// Stream runs cmd in the pod and returns its standard output as it
// comes: at its end the error says how cmd, doing what, failed, with its
// standard error. Closing the reader early stops cmd.
func (p *Pod) Stream(ctx context.Context, what string, cmd []string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		var errb bytes.Buffer
		err := p.Exec(ctx, cmd, nil, pw, &errb)
		if err != nil {
			err = fmt.Errorf("%s on node %s: %w %s", what, p.Node, err, strings.TrimSpace(errb.String()))
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// SHA256 is the sha256 of file in the pod, which sha256sum reads there.
func (p *Pod) SHA256(ctx context.Context, file string) (string, error) {
	var out, errb bytes.Buffer
	if err := p.Exec(ctx, []string{"sha256sum", file}, nil, &out, &errb); err != nil {
		return "", fmt.Errorf("hashing %s on node %s: %w %s", file, p.Node, err, strings.TrimSpace(errb.String()))
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(out.String()), " ")
	return sum, nil
}
