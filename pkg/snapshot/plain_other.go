//go:build !linux

package snapshot

import (
	"errors"
	"os"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

var errNoMemFile = hint.Permanent(errors.New("this OS cannot hold a decrypted snapshot in memory"),
	"pass --decrypt-dir DIR to decrypt into a private file there, removed after")

func memFile(string) (*os.File, error) { return nil, errNoMemFile }

func memPath(*os.File) string { return "" }
