package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentclient"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// RecoverConfig is what `kubectl etcd recover` asks for.
type RecoverConfig struct {
	Options
	// ScriptDir holds the survey script, the surveys the operator brings
	// back (survey-*.json), and then the recovery's scripts.
	ScriptDir, AgentDir string
	// ID names the recovery (its journal dirs); default the time.
	ID string
	// StaticPodDir is the kubelet's static pod dir on the nodes.
	StaticPodDir string
	// Healthy asks the API which etcd members answer healthy; an error
	// when it cannot tell (the API down, as with a quorum lost). Any
	// healthy member means the cluster has a quorum, and the recovery is
	// refused. Nil asks nothing.
	Healthy func() ([]string, error)
}

// SurveyScript is the file name of the survey's node script.
const SurveyScript = "survey.sh"

// RecoverScript and RejoinScript are the file names of the survivor's
// and the others' scripts.
func RecoverScript(node string) string { return "recover-" + node + ".sh" }
func RejoinScript(node string) string  { return "rejoin-" + node + ".sh" }

// RecoverResult is what recover did: the survey script written, or the
// surveys ranked and the recovery's scripts written in the order to run
// them.
type RecoverResult struct {
	Phase   string   `json:"phase"` // survey or plan
	DryRun  bool     `json:"dryRun,omitempty"`
	ID      string   `json:"id,omitempty"`
	Surveys []Ranked `json:"surveys,omitempty"`
	// Scripts are in the order to run them, one node at a time.
	Scripts []string `json:"scripts,omitempty"`
	// Dropped are members of the survivor's membership that no survey
	// covers: the recovery leaves them out of the cluster.
	Dropped []string `json:"dropped,omitempty"`
}

// Ranked is a survey with its place against the most advanced one.
type Ranked struct {
	agentapi.Survey
	Rank int `json:"rank"` // 1 is the survivor; 0: no data
	// Behind is how many raft entries a start from this member would lose
	// against the survivor; LosesRevisions, where both revisions are
	// known, how many revisions.
	Behind         uint64 `json:"behind"`
	LosesRevisions int64  `json:"losesRevisions,omitempty"`
	Role           string `json:"role"` // survivor or rejoins
	File           string `json:"file"`
}

// Recover is the quorum-loss recovery in script mode, for a cluster whose
// API cannot serve: with no survey in ScriptDir it writes the survey
// script; with surveys there it ranks them, prints the plan and, once
// confirmed, writes the survivor's script and the others' rejoin scripts.
func Recover(cfg RecoverConfig) (*RecoverResult, error) {
	cfg.Defaults()
	if cfg.ID == "" {
		cfg.ID = cfg.Now().UTC().Format("20060102T150405Z")
	}
	if cfg.StaticPodDir == "" {
		cfg.StaticPodDir = defaultStaticPodDir
	}
	surveys, err := loadSurveys(cfg.ScriptDir)
	if err != nil {
		return nil, err
	}
	if err := refuseQuorum(cfg); err != nil {
		return nil, err
	}
	if len(surveys) == 0 {
		return writeSurveyScript(cfg)
	}
	ranked, err := RankSurveys(surveys)
	if err != nil {
		return nil, err
	}
	res := &RecoverResult{Phase: "plan", ID: cfg.ID, Surveys: ranked, DryRun: cfg.DryRun}
	best := ranked[0]
	known := map[string]bool{}
	for _, r := range ranked {
		known[r.Member] = true
	}
	for _, m := range best.Members {
		if !known[m.Name] {
			res.Dropped = append(res.Dropped, fmt.Sprintf("%s (%s)", m.Name, m.ID))
		}
	}
	if prior, _ := filepath.Glob(filepath.Join(cfg.ScriptDir, "recover-*.sh")); len(prior) > 0 && !cfg.DryRun {
		return nil, hint.Permanent(fmt.Errorf("%s holds the scripts of a recovery planned already (%s)", cfg.ScriptDir, filepath.Base(prior[0])),
			"run them in the order they were printed; to plan again from new surveys, use a new --script-dir with the survey script and the surveys only")
	}
	if prior, _ := filepath.Glob(filepath.Join(cfg.ScriptDir, "recover-*.sh")); len(prior) > 0 {
		cfg.Notef("The scripts of a recovery are written already in %s (%s): run them in the order printed then; this dry run shows the plan again.", cfg.ScriptDir, filepath.Base(prior[0]))
	}
	rspec := agentapi.RecoverSpec{ID: cfg.ID, Node: best.Node, Member: best.Member, StaticPodDir: cfg.StaticPodDir,
		JournalDir: path.Join(agentapi.JournalRoot(agentapi.RecoverOperation), cfg.ID), AgentImage: best.Image, Expect: best.Survey}
	if err := rspec.Validate(); err != nil {
		return nil, err
	}
	var scripts []nodeScript
	scripts = append(scripts, nodeScript{File: RecoverScript(best.Node), Command: "kubectl etcd recover --script-dir",
		Title: fmt.Sprintf("recover %s: node %s, member %s (%s), the most advanced survivor", cfg.ID, best.Node, best.Member, best.MemberID),
		Node:  best.Node, Op: agentapi.RecoverOperation, ID: cfg.ID, Journal: rspec.JournalDir, Steps: planLines(agent.PlanRecover(&rspec)), Spec: rspec})
	for _, r := range ranked[1:] {
		spec := agentapi.ReplaceSpec{ID: cfg.ID, Node: r.Node, Member: r.Member, StaticPodDir: cfg.StaticPodDir,
			JournalDir: path.Join(agentapi.JournalRoot(agentapi.ReplaceOperation), cfg.ID), Endpoints: []string{best.ClientURL}, AgentImage: r.Image}
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("member %s on node %s: %w", r.Member, r.Node, err)
		}
		scripts = append(scripts, nodeScript{File: RejoinScript(r.Node), Command: "kubectl etcd recover --script-dir",
			Title: fmt.Sprintf("recover %s: node %s, member %s rejoins the cluster of %s", cfg.ID, r.Node, r.Member, best.Member),
			Node:  r.Node, Op: agentapi.ReplaceOperation, ID: cfg.ID, Journal: spec.JournalDir, Steps: stepLines(spec), Spec: spec})
	}
	printRecoverPlan(cfg, res, scripts)
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was written")
		return res, nil
	}
	if err := cfg.Confirm(fmt.Sprintf("Recover the cluster from member %s on node %s, the others rejoining it?", best.Member, best.Node)); err != nil {
		return nil, err
	}
	agents, err := agentclient.ForScript(cfg.ScriptDir)
	if err != nil {
		return nil, fmt.Errorf("the agents beside %s: %w", SurveyScript, err)
	}
	for _, s := range scripts {
		if err := s.write(cfg.ScriptDir, agents); err != nil {
			return nil, err
		}
		res.Scripts = append(res.Scripts, filepath.Join(cfg.ScriptDir, s.File))
	}
	cfg.Notef("\nWrote %s. Next, one node at a time, each script to its end (it follows the agent; Ctrl-C is safe, and running it again follows on):", cfg.ScriptDir)
	for i, s := range scripts {
		cfg.Notef("  %d. on %s, as root: sh %s/%s", i+1, s.Node, filepath.Base(cfg.ScriptDir), s.File)
	}
	cfg.Notef("  then: kubectl etcd health (the API serves again once the survivor's etcd does)")
	return res, nil
}

// refuseQuorum refuses a recovery when the API answers and a member is
// healthy: etcd's health needs a quorum, and a forced new cluster would
// throw away the others for nothing.
func refuseQuorum(cfg RecoverConfig) error {
	if cfg.Healthy == nil {
		return nil
	}
	healthy, err := cfg.Healthy()
	switch {
	case err != nil:
		cfg.Notef("The API does not answer (%v), as with a quorum lost: the recovery goes on through node scripts.", err)
		return nil
	case len(healthy) > 0:
		who := "member " + healthy[0] + " answers"
		if len(healthy) > 1 {
			who = "members " + strings.Join(healthy, ", ") + " answer"
		}
		return hint.Permanent(fmt.Errorf("the cluster has a quorum: %s healthy through the API", who),
			"there is nothing to recover: a member whose data is lost is `kubectl etcd member replace MEMBER`; kubectl etcd health shows the others")
	}
	cfg.Notef("The API answers, and no etcd member is healthy: the recovery goes on through node scripts.")
	return nil
}

func printRecoverPlan(cfg RecoverConfig, res *RecoverResult, scripts []nodeScript) {
	best := res.Surveys[0]
	cfg.Notef("Recover %s: etcd lost its quorum; it starts again from the most advanced survivor.", res.ID)
	cfg.Notef("  survivor: member %s (%s) on node %s: raft index %d kept%s", best.Member, best.MemberID, best.Node, best.Kept(), revision(best.Backend))
	for _, r := range res.Surveys[1:] {
		switch {
		case r.NoData != "":
			cfg.Notef("  rejoins:  member %s on node %s: %s", r.Member, r.Node, r.NoData)
		default:
			cfg.Notef("  rejoins:  member %s (%s) on node %s: %d raft entries behind%s; its data is moved aside (kept)", r.Member, r.MemberID, r.Node, r.Behind, loses(r))
		}
	}
	for _, d := range res.Dropped {
		cfg.Notef("  left out: member %s: no survey of its node; it is no longer a member once the survivor starts. Survey its node and plan again, or add it back later (kubectl etcd member add)", d)
	}
	for i, s := range scripts {
		cfg.Notef("  %d. %s on node %s:", i+1, s.File, s.Node)
		cfg.Notef("     0. check the agent's sha256, install it under %s, start its static pod", agentclient.BinDir)
		for j, l := range s.Steps {
			cfg.Notef("     %d. %s", j+1, l)
		}
	}
	cfg.Notef("  the survivor's data as it was: %s on node %s (a copy, kept)", agentapi.BeforeRecoverDataDir(best.DataDir, res.ID), best.Node)
	cfg.Notef("  etcd offers no --bump-revision for --force-new-cluster: the survivor keeps its revisions, so watchers resume where they were")
}

func revision(b *agentapi.BackendState) string {
	if b == nil || b.Error != "" && b.From != "metrics" {
		return ""
	}
	return fmt.Sprintf(", revision %d", b.Revision)
}

func loses(r Ranked) string {
	if r.LosesRevisions > 0 {
		return fmt.Sprintf(", %d revisions", r.LosesRevisions)
	}
	return ""
}

// planLines is the plan's steps as lines.
func planLines(steps []agent.PlannedStep) []string {
	var out []string
	for _, st := range steps {
		line := st.Name
		if st.Detail != "" {
			line += ": " + st.Detail
		}
		if st.PointOfNoReturn {
			line += " [the point of no return: before it a failure puts the manifest and the data back by itself; from it on, a failure holds and is resumed]"
		}
		out = append(out, line)
	}
	return out
}

// loadSurveys reads ScriptDir's survey-*.json files.
func loadSurveys(dir string) ([]Ranked, error) {
	files, err := filepath.Glob(filepath.Join(dir, "survey-*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Ranked
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var s agentapi.Survey
		if err := json.Unmarshal(b, &s); err != nil || s.Kind != agentapi.SurveyKind {
			if err == nil {
				err = fmt.Errorf("kind %q", s.Kind)
			}
			return nil, hint.Permanent(fmt.Errorf("%s is not a survey (%v)", f, err), "keep in --script-dir only what "+SurveyScript+" printed, one file per node")
		}
		out = append(out, Ranked{Survey: s, File: filepath.Base(f)})
	}
	return out, nil
}

// RankSurveys orders the surveys for a recovery: the survivor first (a
// voter before a learner, then the most raft entries kept, then the
// highest last term and index), the members without data last. It
// refuses surveys that do not make one cluster that lost its quorum.
func RankSurveys(in []Ranked) ([]Ranked, error) {
	seen := map[string]string{}
	cluster := ""
	for _, s := range in {
		if f, ok := seen[s.Member]; ok {
			return nil, hint.Permanent(fmt.Errorf("%s and %s are both surveys of member %s", f, s.File, s.Member), "keep one survey per node: the newest")
		}
		seen[s.Member] = s.File
		if s.Healthy {
			return nil, hint.Permanent(fmt.Errorf("member %s on node %s answered healthy when surveyed (%s): the cluster has a quorum, and a recovery would throw its membership away", s.Member, s.Node, s.Taken.Format("15:04:05Z")),
				"replace the dead members instead (kubectl etcd member replace NODE); survey again if the quorum was lost since")
		}
		if s.WAL == nil {
			continue
		}
		if cluster != "" && s.ClusterID != cluster {
			return nil, hint.Permanent(fmt.Errorf("the surveys are of two clusters (%s and %s; %s is of %s)", cluster, s.ClusterID, s.File, s.ClusterID), "keep only the surveys of this cluster's nodes in --script-dir")
		}
		cluster = s.ClusterID
	}
	out := append([]Ranked(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.WAL == nil) != (b.WAL == nil) {
			return a.WAL != nil
		}
		if a.WAL == nil {
			return a.Node < b.Node
		}
		if a.IsLearner() != b.IsLearner() {
			return !a.IsLearner()
		}
		if a.Kept() != b.Kept() {
			return a.Kept() > b.Kept()
		}
		if a.WAL.LastTerm != b.WAL.LastTerm {
			return a.WAL.LastTerm > b.WAL.LastTerm
		}
		if a.WAL.LastIndex != b.WAL.LastIndex {
			return a.WAL.LastIndex > b.WAL.LastIndex
		}
		return a.Node < b.Node
	})
	if len(out) == 0 || out[0].WAL == nil {
		var why []string
		for _, s := range out {
			why = append(why, s.Member+": "+s.NoData)
		}
		return nil, hint.Permanent(errors.New("no surveyed member has data to recover from ("+strings.Join(why, "; ")+")"),
			"survey the other nodes, or restore from a snapshot (kubectl etcd restore)")
	}
	if out[0].IsLearner() {
		return nil, hint.Permanent(fmt.Errorf("only learners have data (the most advanced: %s): a learner never voted, so its log may lack what the voters committed", out[0].Member),
			"survey the voters' nodes, or restore from a snapshot (kubectl etcd restore)")
	}
	best := out[0]
	for i := range out {
		r := &out[i]
		r.Role = "rejoins"
		if r.WAL == nil {
			continue
		}
		r.Rank = i + 1
		r.Behind = best.Kept() - r.Kept()
		if best.Backend != nil && r.Backend != nil && best.Backend.Revision > 0 && r.Backend.Revision > 0 {
			r.LosesRevisions = best.Backend.Revision - r.Backend.Revision
		}
	}
	out[0].Role = "survivor"
	return out, nil
}

// writeSurveyScript writes the survey script and the agents into
// ScriptDir (new or empty).
func writeSurveyScript(cfg RecoverConfig) (*RecoverResult, error) {
	if cfg.DryRun {
		cfg.Notef("Dry run: nothing was written; without --dry-run, %s gets %s and the agents", cfg.ScriptDir, SurveyScript)
		return &RecoverResult{Phase: "survey", DryRun: true}, nil
	}
	if err := os.MkdirAll(cfg.ScriptDir, 0o700); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(cfg.ScriptDir); err != nil || len(ents) > 0 {
		if err == nil {
			err = fmt.Errorf("--script-dir %s holds no survey-*.json and is not empty: give a new or empty dir for the survey script, then bring the surveys back into it", cfg.ScriptDir)
		}
		return nil, err
	}
	agents, err := agentclient.ForScript(cfg.AgentDir)
	if err != nil {
		return nil, err
	}
	if err := agentclient.CopyAgents(cfg.ScriptDir, agents); err != nil {
		return nil, err
	}
	s := nodeScript{File: SurveyScript, Command: "kubectl etcd recover --script-dir", Title: "recover: the survey of one node's etcd, read offline; it changes nothing",
		Run: "recover survey --root / --static-pod-dir " + cfg.StaticPodDir}
	if err := s.write(cfg.ScriptDir, agents); err != nil {
		return nil, err
	}
	dir := filepath.Base(cfg.ScriptDir)
	cfg.Notef("Wrote %s: %s and the agents for %s.", cfg.ScriptDir, SurveyScript, strings.Join(archs(agents), " and "))
	cfg.Notef("Next:\n  1. copy %s to every control-plane node that is left (scp -r, or any way you have)\n  2. on each, as root: sh %s/%s > %s/survey-$(hostname).json\n     it reads etcd's WAL and database, and changes nothing\n  3. bring the survey-*.json files back into %s here\n  4. kubectl etcd recover --script-dir %s: it ranks the members and writes the scripts that recover the cluster",
		cfg.ScriptDir, dir, SurveyScript, dir, cfg.ScriptDir, cfg.ScriptDir)
	return &RecoverResult{Phase: "survey", Scripts: []string{filepath.Join(cfg.ScriptDir, SurveyScript)}}, nil
}
