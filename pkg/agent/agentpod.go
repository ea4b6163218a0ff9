package agent

import (
	"fmt"
	"path"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// The few fields of a Pod the agent's manifest needs: the agent stays a
// few MB, without k8s.io/api.
type (
	podManifest struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   podMeta `yaml:"metadata"`
		Spec       podSpec `yaml:"spec"`
	}
	podMeta struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	}
	podSpec struct {
		HostNetwork                   bool         `yaml:"hostNetwork"`
		HostPID                       bool         `yaml:"hostPID"`
		RestartPolicy                 string       `yaml:"restartPolicy"`
		PriorityClassName             string       `yaml:"priorityClassName"`
		TerminationGracePeriodSeconds int          `yaml:"terminationGracePeriodSeconds"`
		Tolerations                   []toleration `yaml:"tolerations"`
		Containers                    []container  `yaml:"containers"`
		Volumes                       []volume     `yaml:"volumes"`
	}
	toleration struct {
		Operator string `yaml:"operator"`
	}
	container struct {
		Name            string          `yaml:"name"`
		Image           string          `yaml:"image"`
		ImagePullPolicy string          `yaml:"imagePullPolicy"`
		Command         []string        `yaml:"command"`
		SecurityContext securityContext `yaml:"securityContext"`
		VolumeMounts    []volumeMount   `yaml:"volumeMounts"`
	}
	securityContext struct {
		Privileged bool `yaml:"privileged"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	}
	volume struct {
		Name     string   `yaml:"name"`
		HostPath hostPath `yaml:"hostPath"`
	}
	hostPath struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	}
)

// podRoot is where an agent's static pod mounts the node's /.
const podRoot = "/host"

// AgentPod is the static pod that runs `<operation> sub` for s on its node.
//
// A static pod, not a pod of the API: once the restored etcd serves, the
// API knows no pod made after the snapshot, and the kubelet kills every
// such pod on its node. The kubelet runs a static pod from its file
// whatever the API says, restarts it after a crash (it then resumes from
// the journal), and the agent takes the file out when it has finished.
//
// The image is etcd's own (on the node already, never pulled); the agent
// is a static binary run from the node's disk, at exe under root.
func AgentPod(s agentapi.AgentPodSpec, root, exe, journalRoot, sub, claim string) ([]byte, error) {
	if s.AgentImage == "" {
		return nil, fmt.Errorf("the %s spec names no agent image", s.Operation)
	}
	if !strings.HasPrefix(exe, strings.TrimSuffix(root, "/")+"/") {
		return nil, fmt.Errorf("the agent %s is not on the node's disk under %s, where its static pod can run it", exe, root)
	}
	// The pod mounts the node's / at podRoot, whatever root the agent
	// that writes it was given (/ when an operator runs it on the node).
	exe = podRoot + strings.TrimPrefix(exe, strings.TrimSuffix(root, "/"))
	root = podRoot
	self := path.Join(s.StaticPodDir, s.PodFile(sub))
	p := podManifest{
		APIVersion: "v1", Kind: "Pod",
		Metadata: podMeta{
			Name:      s.PodName(sub),
			Namespace: agentapi.AgentPodNamespace,
			Labels:    map[string]string{agentapi.ManagedByLabel: agentapi.ManagedByValue, agentapi.PurposeLabel: agentapi.AgentPurpose},
		},
		Spec: podSpec{
			HostNetwork: true, HostPID: true,
			// A crash restarts the agent, which resumes; a finished agent
			// exits 0 and is not restarted.
			RestartPolicy:                 "OnFailure",
			PriorityClassName:             "system-node-critical",
			TerminationGracePeriodSeconds: 30,
			Tolerations:                   []toleration{{Operator: "Exists"}},
			Containers: []container{{
				Name: "agent", Image: s.AgentImage, ImagePullPolicy: "Never",
				Command: []string{exe, s.Operation, sub, "--root", root, "--journal-root", journalRoot,
					"--id", s.ID, "--static-pod", self, "--claim", claim},
				SecurityContext: securityContext{Privileged: true},
				// No mount propagation: it needs / to be a shared mount.
				VolumeMounts: []volumeMount{{Name: "host", MountPath: root}},
			}},
			Volumes: []volume{{Name: "host", HostPath: hostPath{Path: "/", Type: "Directory"}}},
		},
	}
	return yaml.Marshal(p)
}
