package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/keyspace"
)

// SourceWalk walks every /registry/ key of src with its value, a page
// at a time, at revision rev (0: the newest).
func SourceWalk(ctx context.Context, src keyspace.Source, rev int64) Walk {
	return func(fn func(key string, value []byte) error) error {
		q := keyspace.Query{Key: "/registry/", Prefix: true, Revision: rev, Detail: keyspace.Values}
		_, err := src.Walk(ctx, q, func(p keyspace.Page) error {
			for _, e := range p.Entries {
				if err := fn(string(e.Key), e.Value); err != nil {
					return err
				}
			}
			return nil
		})
		return err
	}
}

// Stream is the manifests as one multi-document YAML stream, after
// header (comment lines, without their #).
func Stream(header []string, objs []*unstructured.Unstructured) ([]byte, error) {
	var b bytes.Buffer
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	for _, u := range objs {
		y, err := YAML(u)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

// WriteFile writes the stream to a new file, readable by its owner
// only: it can hold Secrets.
func WriteFile(path string, stream []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return hint.Permanent(err, "remove it, or name another file")
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(stream); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteDir writes one file per manifest into dir (made if missing),
// numbered in the order to apply them: kubectl apply -f DIR reads a
// directory's files in name order.
func WriteDir(dir string, header []string, objs []*unstructured.Unstructured) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var names []string
	for i, u := range objs {
		name := fmt.Sprintf("%03d-%s-%s.yaml", i+1, strings.ToLower(u.GetKind()), u.GetName())
		stream, err := Stream(header, []*unstructured.Unstructured{u})
		if err != nil {
			return names, err
		}
		if err := WriteFile(filepath.Join(dir, name), stream); err != nil {
			return names, err
		}
		names = append(names, name)
	}
	return names, nil
}
