package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"reflect"

	"k8s.io/client-go/kubernetes"
)

// StaticPodDirReader reads a node's kubelet static pod dir.
type StaticPodDirReader func(ctx context.Context, node string) (string, error)

// KubeletStaticPodDir reads staticPodPath from the node's kubelet config,
// served at /configz through the API server's node proxy (RBAC: nodes/proxy).
func KubeletStaticPodDir(c kubernetes.Interface) StaticPodDirReader {
	return func(ctx context.Context, node string) (string, error) {
		rc := c.CoreV1().RESTClient()
		// A fake clientset's is a nil pointer inside the interface.
		if rc == nil || reflect.ValueOf(rc).IsNil() {
			return "", fmt.Errorf("no REST client to reach the kubelet")
		}
		raw, err := rc.Get().AbsPath("/api/v1/nodes", node, "proxy", "configz").DoRaw(ctx)
		if err != nil {
			return "", err
		}
		return parseConfigz(raw)
	}
}

// parseConfigz reads staticPodPath from the kubelet's /configz document.
func parseConfigz(raw []byte) (string, error) {
	var cz struct {
		KubeletConfig *struct {
			StaticPodPath string `json:"staticPodPath"`
		} `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(raw, &cz); err != nil {
		return "", fmt.Errorf("the kubelet's /configz is not JSON: %w", err)
	}
	if cz.KubeletConfig == nil {
		return "", fmt.Errorf("the kubelet's /configz holds no kubeletconfig")
	}
	p := cz.KubeletConfig.StaticPodPath
	if p == "" {
		return "", fmt.Errorf("the kubelet runs no static pods (staticPodPath is empty)")
	}
	if !path.IsAbs(p) {
		return "", fmt.Errorf("the kubelet's staticPodPath %q is not an absolute path", p)
	}
	return path.Clean(p), nil
}

// staticPodDirs reads each node's static pod dir. A node whose kubelet
// config cannot be read falls back to the default, with a warning in the
// plan; one that runs no static pods cannot host a member's manifest.
func staticPodDirs(ctx context.Context, read StaticPodDirReader, nodes []string) (map[string]string, []string) {
	dirs := map[string]string{}
	var warnings []string
	if read == nil {
		return dirs, nil
	}
	for _, n := range nodes {
		d, err := read(ctx, n)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("node %s: cannot read the kubelet's static pod dir from /configz (%v); using %s", n, firstLine(err), DefaultStaticPodDir))
			continue
		}
		dirs[n] = d
	}
	return dirs, warnings
}
