// Package e2e drives the built plugin through `kubectl etcd` against the
// real local kubeadm cluster of hack/cluster. It starts that cluster when
// the one running is not the flavour and size asked for, and fails, never
// skips, when it cannot. Run it with the e2e build tag:
//
//	E2E_FLAVOUR=1.33|1.36|1.37 (default 1.33) E2E_NODES=1|3 (default 1) \
//	  go test -tags e2e ./test/e2e
package e2e
