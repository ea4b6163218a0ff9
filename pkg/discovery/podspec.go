package discovery

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// unsupportedFlags cannot be honoured because they move settings out of the
// pod spec, where the plugin cannot read them.
var unsupportedFlags = map[string]string{
	"config-file": "settings come from a config file the plugin cannot read; flags and ETCD_* variables in the pod spec are used",
}

// ParsePod reads an etcd member from its static pod. It never fails: what
// it cannot understand is listed in Member.Unsupported.
func ParsePod(pod *corev1.Pod) Member {
	c := etcdContainer(pod)
	m := Member{
		Pod:       pod.Name,
		Namespace: pod.Namespace,
		Node:      pod.Spec.NodeName,
		PodPhase:  pod.Status.Phase,
	}
	m.Running, m.NotRunningReason = podRunning(pod, c)
	if c == nil {
		m.Unsupported = append(m.Unsupported, "no container runs etcd")
		return m
	}
	m.Container = c.Name
	m.Image = c.Image
	m.Version = versionFromImage(c.Image)

	flags := envFlags(c.Env)
	for k, v := range parseArgs(append(append([]string{}, c.Command...), c.Args...)) {
		flags[k] = v // command-line flags win over ETCD_* variables, as in etcd
	}
	m.apply(flags)
	if m.Name == "" {
		m.Name = "default"
	}
	if m.DataDir == "" {
		m.DataDir = m.Name + ".etcd"
	}
	return m
}

func (m *Member) apply(flags map[string]string) {
	list := func(k string) []string { return splitList(flags[k]) }
	m.Name = flags["name"]
	m.DataDir = flags["data-dir"]
	m.AdvertiseClientURLs = list("advertise-client-urls")
	m.ListenClientURLs = list("listen-client-urls")
	m.InitialAdvertisePeerURLs = list("initial-advertise-peer-urls")
	m.ListenPeerURLs = list("listen-peer-urls")
	m.ListenMetricsURLs = list("listen-metrics-urls")
	m.InitialCluster = flags["initial-cluster"]
	m.InitialClusterState = flags["initial-cluster-state"]
	m.Client = TLSFiles{
		CertFile:       flags["cert-file"],
		KeyFile:        flags["key-file"],
		TrustedCAFile:  flags["trusted-ca-file"],
		ClientCertAuth: isTrue(flags["client-cert-auth"]),
	}
	m.Peer = TLSFiles{
		CertFile:       flags["peer-cert-file"],
		KeyFile:        flags["peer-key-file"],
		TrustedCAFile:  flags["peer-trusted-ca-file"],
		ClientCertAuth: isTrue(flags["peer-client-cert-auth"]),
	}
	m.QuotaBackendBytes = DefaultQuotaBackendBytes
	if q := flags["quota-backend-bytes"]; q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		switch {
		case err != nil:
			m.Unsupported = append(m.Unsupported, fmt.Sprintf("--quota-backend-bytes=%q is not a number; assuming the default", q))
		case n > 0:
			m.QuotaBackendBytes = n
		}
	}
	for k, why := range unsupportedFlags {
		if v, ok := flags[k]; ok {
			m.Unsupported = append(m.Unsupported, fmt.Sprintf("--%s=%s: %s", k, v, why))
		}
	}
	m.AutoTLS = isTrue(flags["auto-tls"]) || isTrue(flags["client-auto-tls"])
	m.PeerAutoTLS = isTrue(flags["peer-auto-tls"])
	if flags["auto-tls"] == "true" || flags["client-auto-tls"] == "true" {
		m.Unsupported = append(m.Unsupported, "--auto-tls: self-signed client certificates have no CA to verify against")
	}
}

// parseArgs accepts --flag=value, --flag value, -flag=value and bare boolean
// flags. The first element is skipped when it is the etcd binary itself.
func parseArgs(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(a, "="); ok {
			out[k] = v
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out[a] = args[i+1]
			i++
			continue
		}
		out[a] = "true"
	}
	return out
}

// envFlags turns ETCD_FOO_BAR=v into foo-bar=v, as etcd itself does.
func envFlags(env []corev1.EnvVar) map[string]string {
	out := map[string]string{}
	for _, e := range env {
		if !strings.HasPrefix(e.Name, "ETCD_") || e.ValueFrom != nil {
			continue
		}
		k := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(e.Name, "ETCD_"), "_", "-"))
		out[k] = e.Value
	}
	return out
}

func etcdContainer(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "etcd" {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cmd := append(append([]string{}, c.Command...), c.Args...)
		if len(cmd) > 0 && (cmd[0] == "etcd" || strings.HasSuffix(cmd[0], "/etcd")) {
			return c
		}
	}
	return nil
}

func podRunning(pod *corev1.Pod, c *corev1.Container) (bool, string) {
	if pod.DeletionTimestamp != nil {
		return false, "pod is being deleted"
	}
	if pod.Status.Phase != corev1.PodRunning {
		return false, fmt.Sprintf("pod phase is %s%s", pod.Status.Phase, waitingReason(pod))
	}
	if c == nil {
		return false, "no etcd container"
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != c.Name {
			continue
		}
		if cs.State.Running == nil {
			return false, "etcd container is not running" + waitingReason(pod)
		}
		return true, ""
	}
	return true, ""
}

func waitingReason(pod *corev1.Pod) string {
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return fmt.Sprintf(" (%s: %s)", w.Reason, w.Message)
		}
	}
	return ""
}

func versionFromImage(image string) string {
	if at := strings.Index(image, "@"); at >= 0 {
		image = image[:at]
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return ""
	}
	tag := strings.TrimPrefix(image[i+1:], "v")
	if dash := strings.Index(tag, "-"); dash >= 0 {
		tag = tag[:dash]
	}
	if strings.Count(tag, ".") != 2 {
		return ""
	}
	return tag
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isTrue(s string) bool { b, _ := strconv.ParseBool(s); return b }
