package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Metadata is written beside a snapshot as FILE.json by backup; restore
// plans from it. IDs are hex strings.
type Metadata struct {
	File              string    `json:"file"`
	ClusterID         string    `json:"clusterID"`
	Member            string    `json:"member"`
	MemberID          string    `json:"memberID"`
	Node              string    `json:"node,omitempty"`
	Revision          int64     `json:"revision"`
	EtcdVersion       string    `json:"etcdVersion"`
	StorageVersion    string    `json:"storageVersion,omitempty"`
	KubernetesVersion string    `json:"kubernetesVersion,omitempty"`
	Context           string    `json:"context,omitempty"`
	Time              time.Time `json:"time"`
	Size              int64     `json:"size"`
	SHA256            string    `json:"sha256"`
	SnapshotSHA256    string    `json:"snapshotSHA256"`
	Encrypted         bool      `json:"encrypted"`
	// Via is how the snapshot's bytes left the member: "stream" (etcd's
	// snapshot stream read here) or "node" (taken by the node agent on the
	// member's node); Compression how the file holds it ("zstd" or "s2",
	// inside the encryption when both).
	Via         string           `json:"via,omitempty"`
	Compression string           `json:"compression,omitempty"`
	Members     []MetadataMember `json:"members"`
	// EncryptionAtRest lists the API servers that encrypted values with
	// their own keys: those values need that config to be read.
	EncryptionAtRest []EncryptionAtRest `json:"encryptionAtRest,omitempty"`
	// Bundle is set when the file is a DR bundle.
	Bundle *BundleSummary `json:"bundle,omitempty"`
}

// BundleSummary says what a bundle holds beside the snapshot.
type BundleSummary struct {
	Files int `json:"files"`
	// EncryptionKeys are the key names each node's encryption config holds.
	EncryptionKeys map[string][]string `json:"encryptionKeys,omitempty"`
}

// EncryptionAtRest is one API server's --encryption-provider-config.
type EncryptionAtRest struct {
	Node   string `json:"node"`
	Config string `json:"config"`
}

// MetadataMember is one member of the cluster when the snapshot was taken,
// with the JSON of the members command.
type MetadataMember struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Node       string   `json:"node,omitempty"`
	Pod        string   `json:"pod,omitempty"`
	Status     string   `json:"status"`
	IsLearner  bool     `json:"isLearner"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// MetadataPath is where backup writes the metadata of the snapshot at path.
func MetadataPath(path string) string { return path + ".json" }

// WriteMetadata writes m to path as a snapshot file is written: through
// an exclusive path.part, fsynced, then moved to path, which it never
// replaces. A failure leaves neither path nor path.part.
func WriteMetadata(path string, m *Metadata) error {
	return writeMetadata(path, m, nil)
}

// writeMetadata is WriteMetadata, with wrap (if set) around the file, for
// tests to fail a write.
func writeMetadata(path string, m *Metadata, wrap func(io.Writer) io.Writer) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	p, err := createPart(path)
	if err != nil {
		return err
	}
	defer p.discard()
	var w io.Writer = p.f
	if wrap != nil {
		w = wrap(w)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing %s: %w", PartPath(path), err)
	}
	return p.commit()
}

// ReadMetadata reads a FILE.json that backup wrote.
func ReadMetadata(path string) (*Metadata, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, hint.Permanent(fmt.Errorf("no metadata file %s", path),
			"backup writes it beside the snapshot; pass the .json that came with this snapshot")
	}
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, hint.Permanent(fmt.Errorf("%s is not snapshot metadata: %w", path, err),
			"pass the FILE.json that backup wrote beside the snapshot")
	}
	if m.ClusterID == "" || m.SHA256 == "" {
		return nil, hint.Permanent(fmt.Errorf("%s lacks clusterID or sha256, so it is not metadata backup wrote", path),
			"pass the FILE.json that backup wrote beside the snapshot")
	}
	return &m, nil
}
