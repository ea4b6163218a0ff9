package snapshot

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// A DR bundle is the snapshot with what a control plane needs beside it
// to be rebuilt: each control-plane node's kubeadm PKI, static pod
// manifests and the API server's encryption config, and the cluster's
// kubeadm-config and kubelet-config. It holds keys, so it is only ever
// written age-encrypted. Its plaintext is a tar of those files, the first
// entry an index of them with each one's sha256, then, after the tar's
// end, the snapshot to the end of the stream:
//
//	age -d -i KEY FILE | tar -x    # the files; the snapshot follows the tar
//
// A reader of snapshots skips the tar and reads the snapshot, so every
// command that takes a snapshot file takes a bundle.

// BundleIndexName is the tar's first entry.
const BundleIndexName = "kubectl-etcd-bundle/index.json"

// BundleVersion is the format's version.
const BundleVersion = 1

// BundleIndex says what a bundle holds.
type BundleIndex struct {
	Version int              `json:"version"`
	Created time.Time        `json:"created"`
	Context string           `json:"context,omitempty"`
	Files   []BundleFileInfo `json:"files"`
	// EncryptionKeys are, per node, the key names its API server's
	// encryption config holds ("aescbc:key1"), never a secret.
	EncryptionKeys map[string][]string `json:"encryptionKeys,omitempty"`
}

// BundleFileInfo is one file of a bundle.
type BundleFileInfo struct {
	// Path is its name in the bundle: nodes/NODE/pki/..., nodes/NODE/
	// manifests/..., nodes/NODE/encryption/NAME, cluster/NAME.yaml.
	Path string `json:"path"`
	// Node is the node it was read on ("" for the cluster's).
	Node string `json:"node,omitempty"`
	// Source is where it was read: a node path, or configmap/NS/NAME.
	Source string `json:"source"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BundleFile is a file to bundle, its content in memory.
type BundleFile struct {
	Path, Node, Source string
	Data               []byte
}

// WriteBundle writes the bundle's tar of files to w, the index first, and
// ends the tar; the snapshot is to follow. It does not close w.
func WriteBundle(w io.Writer, idx BundleIndex, files []BundleFile) error {
	idx.Version = BundleVersion
	sortBundle(files)
	idx.Files = nil
	for _, f := range files {
		if err := checkBundlePath(f.Path); err != nil {
			return err
		}
		sum := sha256.Sum256(f.Data)
		idx.Files = append(idx.Files, BundleFileInfo{Path: f.Path, Node: f.Node, Source: f.Source, Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])})
	}
	return writeWithIndex(w, idx, files)
}

func sortBundle(files []BundleFile) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}

// writeWithIndex writes idx and files as they are.
func writeWithIndex(w io.Writer, idx BundleIndex, files []BundleFile) error {
	ib, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: idx.Created.Truncate(time.Second), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put(BundleIndexName, ib); err != nil {
		return err
	}
	for _, f := range files {
		if err := put(f.Path, f.Data); err != nil {
			return err
		}
	}
	return tw.Close() // the end-of-archive blocks, not w
}

// checkBundlePath refuses a name that is not a plain relative path: a
// bundle's names become paths under bundle extract's --to.
func checkBundlePath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == ".." || strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("bundle file name %q is not a clean relative path", p)
	}
	return nil
}

// Bundle is a bundle's files, read and checked against its index.
type Bundle struct {
	Index BundleIndex
	// Files holds each file's content by its path, when asked for.
	Files map[string][]byte
}

// isBundle tells whether a plain stream starts with a bundle's tar: a
// ustar header whose name is the index's.
func isBundle(br *bufio.Reader) bool {
	head, err := br.Peek(512)
	if err != nil {
		return false
	}
	name, _, _ := bytes.Cut(head[:100], []byte{0})
	return string(name) == BundleIndexName && bytes.HasPrefix(head[257:], []byte("ustar"))
}

// ReadBundle reads a bundle's tar from r, up to its end, checking every
// file against the index: a file missing, one not in the index, and one
// whose sha256 differs are each named. With keep, the contents are kept
// (in memory); otherwise only checked. r is left at the snapshot.
func ReadBundle(r io.Reader, keep bool) (*Bundle, error) {
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil || h.Name != BundleIndexName {
		if err == nil {
			err = fmt.Errorf("its first entry is %q", h.Name)
		}
		return nil, fmt.Errorf("not a kubectl-etcd bundle (%w): its index %s comes first", err, BundleIndexName)
	}
	var b Bundle
	if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&b.Index); err != nil {
		return nil, fmt.Errorf("the bundle's index: %w", err)
	}
	if b.Index.Version != BundleVersion {
		return nil, fmt.Errorf("bundle version %d; this kubectl-etcd reads version %d: use a kubectl-etcd as new as the one that wrote it", b.Index.Version, BundleVersion)
	}
	want := map[string]BundleFileInfo{}
	for _, f := range b.Index.Files {
		want[f.Path] = f
	}
	if keep {
		b.Files = map[string][]byte{}
	}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("the bundle's files: %w: the file is cut short or damaged", err)
		}
		info, ok := want[h.Name]
		if !ok {
			return nil, fmt.Errorf("the bundle holds %s, which its index does not list: the file was altered", h.Name)
		}
		hs := sha256.New()
		var buf bytes.Buffer
		var dst io.Writer = hs
		if keep {
			dst = io.MultiWriter(hs, &buf)
		}
		n, err := io.Copy(dst, io.LimitReader(tr, 64<<20))
		if err != nil {
			return nil, fmt.Errorf("the bundle's %s: %w", h.Name, err)
		}
		if got := hex.EncodeToString(hs.Sum(nil)); n != info.Size || got != info.SHA256 {
			return nil, fmt.Errorf("the bundle's %s has sha256 %s (%d bytes), its index says %s (%d bytes): the file was altered or damaged", h.Name, got, n, info.SHA256, info.Size)
		}
		seen[h.Name] = true
		if keep {
			b.Files[h.Name] = buf.Bytes()
		}
	}
	for _, f := range b.Index.Files {
		if !seen[f.Path] {
			return nil, fmt.Errorf("the bundle's index lists %s, which it does not hold: the file was altered or cut short", f.Path)
		}
	}
	return &b, nil
}

// BundleEncrypter wraps enc (Encrypter's) for a bundle: each attempt's
// encrypted stream starts with the bundle's files, then takes the
// snapshot. A bundle is never written without enc.
func BundleEncrypter(enc func(io.Writer) (io.WriteCloser, error), idx BundleIndex, files []BundleFile) func(io.Writer) (io.WriteCloser, error) {
	return func(w io.Writer) (io.WriteCloser, error) {
		if enc == nil {
			return nil, fmt.Errorf("a bundle holds the cluster's keys and is only ever written encrypted: give age recipients")
		}
		wc, err := enc(w)
		if err != nil {
			return nil, err
		}
		if err := WriteBundle(wc, idx, files); err != nil {
			return nil, fmt.Errorf("write the bundle's files: %w", err)
		}
		return wc, nil
	}
}

// Nodes are the nodes a bundle holds files of.
func (i BundleIndex) Nodes() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range i.Files {
		if f.Node != "" && !seen[f.Node] {
			seen[f.Node] = true
			out = append(out, f.Node)
		}
	}
	sort.Strings(out)
	return out
}

// ExtractPlan is what Extract writes for node: each file's path under
// the dir, in the bundle's order. A node the bundle does not hold, or a
// hostile path in its index, is an error.
func (b *Bundle) ExtractPlan(node string) ([]string, error) {
	if !slices.Contains(b.Index.Nodes(), node) {
		return nil, fmt.Errorf("the bundle holds no file of node %q; it holds %s", node, strings.Join(b.Index.Nodes(), ", "))
	}
	prefix := "nodes/" + node + "/"
	var out []string
	for _, f := range b.Index.Files {
		rel, ok := strings.CutPrefix(f.Path, prefix)
		if !ok {
			rel, ok = strings.CutPrefix(f.Path, "cluster/")
		}
		if !ok {
			continue
		}
		if err := checkBundlePath(rel); err != nil {
			return nil, err
		}
		out = append(out, rel)
	}
	return out, nil
}

// extractSource is the bundle path that rel, in node's plan, comes from.
func extractSource(node, rel string, b *Bundle) string {
	if p := "nodes/" + node + "/" + rel; hasKey(b.Files, p) {
		return p
	}
	return "cluster/" + rel
}

// CheckExtractDir refuses a dir Extract cannot write into: one that is
// not empty (no file there is overwritten) or is not a dir.
func CheckExtractDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return err
	case len(ents) > 0:
		return fmt.Errorf("%s is not empty: give a new or empty dir, so that no file there is overwritten", dir)
	}
	return nil
}

func hasKey(m map[string][]byte, k string) bool {
	_, ok := m[k]
	return ok
}

// Extract lays out node's files under dir (new or empty) for rebuilding
// that node: pki/ as kubeadm expects /etc/kubernetes/pki, manifests/,
// encryption/, and the cluster's ConfigMaps; every file 0600, every dir
// 0700. The snapshot is not written. It returns the files written.
func (b *Bundle) Extract(node, dir string) ([]string, error) {
	plan, err := b.ExtractPlan(node)
	if err != nil {
		return nil, err
	}
	if err := CheckExtractDir(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var out []string
	for _, rel := range plan {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return out, err
		}
		fh, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return out, err
		}
		_, err = fh.Write(b.Files[extractSource(node, rel, b)])
		if err == nil {
			err = fh.Sync()
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return out, err
		}
		out = append(out, rel)
	}
	return out, nil
}

// EncryptionConfig is node's API server encryption config in the bundle:
// the node path it was read at and its content; ok is false when the
// bundle holds none for node.
func (b *Bundle) EncryptionConfig(node string) (source string, data []byte, ok bool) {
	prefix := "nodes/" + node + "/encryption/"
	for _, f := range b.Index.Files {
		if strings.HasPrefix(f.Path, prefix) {
			return f.Source, b.Files[f.Path], true
		}
	}
	return "", nil, false
}
