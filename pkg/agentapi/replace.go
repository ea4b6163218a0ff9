package agentapi

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
)

// ReplaceOperation is the journal's Operation for a member replace.
const ReplaceOperation = "replace"

// Files in a replace's journal dir.
const (
	// ReplacedManifest is etcd's manifest for the new member, written once
	// the member is back in the cluster, so that a resumed agent puts in
	// exactly those bytes.
	ReplacedManifest = "etcd.yaml.replaced"
)

// ReplacedAnnotation, on etcd's pod, names the replace that wrote its
// manifest.
const ReplacedAnnotation = "kubectl-etcd.io/replaced"

// Replace step names that other code looks for.
const (
	StepReplaceMember = "replace the member in the cluster"
	StepPromote       = "promote the learner once it has caught up"
)

// ReplaceSpec is one node's member replace, as the plugin writes it: the
// member on this node loses its data and its member ID, and joins again
// as a new member (a learner first) with the same name and peer URL.
// The fields after Endpoints are filled by the agent from the node's
// etcd manifest when the replace starts, and kept in the journal.
type ReplaceSpec struct {
	ID           string `json:"id"`
	Node         string `json:"node"`
	Member       string `json:"member"`
	StaticPodDir string `json:"staticPodDir"`
	JournalDir   string `json:"journalDir"`
	// OldID is the member's hex ID as the plugin found it; empty when the
	// member is not in the list any more (removed by hand).
	OldID string `json:"oldID,omitempty"`
	// Endpoints are the other members' client URLs, through which the
	// agent changes the membership.
	Endpoints []string `json:"endpoints"`
	// AgentImage runs the agent's static pod: etcd's own image.
	AgentImage string `json:"agentImage,omitempty"`

	StopTimeout    Duration `json:"stopTimeout,omitempty"`
	HealthyTimeout Duration `json:"healthyTimeout,omitempty"`
	PollInterval   Duration `json:"pollInterval,omitempty"`

	// Filled by the agent from etcd's manifest.
	DataDir    string   `json:"dataDir,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	EtcdAddrs  []string `json:"etcdAddrs,omitempty"`
	MetricsURL string   `json:"metricsURL,omitempty"`
	ClientURL  string   `json:"clientURL,omitempty"`
	CertFile   string   `json:"certFile,omitempty"`
	KeyFile    string   `json:"keyFile,omitempty"`
	CAFile     string   `json:"caFile,omitempty"`
}

func (s *ReplaceSpec) withDefaults() {
	if s.StopTimeout == 0 {
		s.StopTimeout = Duration(2 * time.Minute)
	}
	if s.HealthyTimeout == 0 {
		s.HealthyTimeout = Duration(10 * time.Minute)
	}
	if s.PollInterval == 0 {
		s.PollInterval = Duration(time.Second)
	}
}

// Validate checks the spec as the plugin wrote it.
func (s *ReplaceSpec) Validate() error {
	s.withDefaults()
	if err := validateMemberOp(ReplaceOperation, s.ID, s.Member, s.StaticPodDir, s.JournalDir, s.DataDir); err != nil {
		return err
	}
	if len(s.Endpoints) == 0 {
		return fmt.Errorf("the replace spec names no other member to ask: a replace needs the rest of the cluster")
	}
	for _, e := range s.Endpoints {
		if u, err := url.Parse(e); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("replace spec endpoint %q is not a client URL such as https://10.0.0.2:2379", e)
		}
	}
	return nil
}

// Pod is what the agent's static pod needs of the spec.
func (s *ReplaceSpec) Pod() AgentPodSpec {
	return AgentPodSpec{Operation: ReplaceOperation, ID: s.ID, StaticPodDir: s.StaticPodDir, AgentImage: s.AgentImage}
}

// Pod is what the agent's static pod needs of the spec.
func (s *RestoreSpec) Pod() AgentPodSpec {
	return AgentPodSpec{Operation: RestoreOperation, ID: s.ID, StaticPodDir: s.StaticPodDir, AgentImage: s.AgentImage}
}

// AgentPodSpec is what an operation's agent static pod is made from.
type AgentPodSpec struct {
	Operation, ID, StaticPodDir, AgentImage string
}

// AsideDataDir is where a replace moves the old member's data: inside the
// data dir, which may be a mount point of its own (a dedicated disk) that
// cannot be moved, and which etcd reads only member/ of.
func AsideDataDir(dataDir, id string) string {
	return path.Join(dataDir, "member.replaced-"+id)
}

// JournalRoot is the node dir of an operation's journals.
func JournalRoot(operation string) string { return "/var/lib/kubectl-etcd/" + operation }

// validateMemberOp checks what the specs of op (replace, recover) share:
// an id and a member, the id a single path element, the journal dir
// named after it and outside the static pod dir, and clean absolute
// node paths.
func validateMemberOp(op, id, member, staticPodDir, journalDir, dataDir string) error {
	if id == "" || member == "" {
		return fmt.Errorf("the %s spec needs an id and a member name", op)
	}
	if strings.ContainsAny(id, "/. ") {
		return fmt.Errorf("%s id %q must be a single path element such as 20260102T030405Z", op, id)
	}
	paths := []struct{ name, p string }{{"staticPodDir", staticPodDir}, {"journalDir", journalDir}, {"dataDir", dataDir}}
	for _, np := range paths {
		if np.name == "dataDir" && np.p == "" {
			continue
		}
		if !path.IsAbs(np.p) || path.Clean(np.p) != np.p || np.p == "/" {
			return fmt.Errorf("%s spec %s %q must be a clean absolute node path", op, np.name, np.p)
		}
	}
	if strings.HasPrefix(journalDir+"/", staticPodDir+"/") {
		return fmt.Errorf("journal dir %s is inside the static pod dir %s: choose one outside it", journalDir, staticPodDir)
	}
	if path.Base(journalDir) != id {
		return fmt.Errorf("journal dir %s must end in the %s id %s", journalDir, op, id)
	}
	return nil
}
