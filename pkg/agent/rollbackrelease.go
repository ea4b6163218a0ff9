package agent

import (
	"encoding/json"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// SaveRollbackRelease writes r to path atomically.
func SaveRollbackRelease(r *agentapi.RollbackRelease, path string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(raw, '\n'), 0o600)
}
