// Package version holds the build's version, stamped by the linker:
// -X github.com/kubectl-etcd/kubectl-etcd/pkg/version.Version=v0.1.0
package version

var (
	Version = "dev"
	Commit  = "none"
	Date    = "unknown"
)
