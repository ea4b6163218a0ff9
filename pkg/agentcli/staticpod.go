package agentcli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agent"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
)

// defaultHandoverWait bounds how long a handover waits for the kubelet to
// start the agent's static pod and the agent to claim the journal.
const defaultHandoverWait = 2 * time.Minute

func (o *options) handoverTimeoutFlag(fs *flag.FlagSet) {
	fs.DurationVar(&o.handoverWait, "handover-timeout", defaultHandoverWait, "how long to wait for the agent's static pod to start and claim the journal")
}

func (o *options) handoverFlags(fs *flag.FlagSet) {
	o.handoverTimeoutFlag(fs)
	fs.BoolVar(&o.detach, "detach", false, "hand the steps to an agent that outlives this process (a static pod, or a detached process without an agent image) and return once it runs")
	fs.StringVar(&o.staticPod, "static-pod", "", "this agent's own static pod manifest (node path), taken out of the static pod dir once the operation has ended")
	fs.StringVar(&o.claimToken, "claim", "", "token recorded in the journal when the agent claims it")
}

// handover starts `restore sub` for the journal in dir in an agent that
// outlives this process, and returns once that agent has claimed it.
func (o *options) handover(dir, sub string) error {
	spec, err := o.podSpec(dir)
	if err != nil {
		return err
	}
	if spec.AgentImage == "" {
		return o.spawn(dir, sub)
	}
	return o.startStaticPod(dir, spec, sub)
}

// podSpec is what the agent's static pod needs of the journal's spec.
func (o *options) podSpec(dir string) (agentapi.AgentPodSpec, error) {
	switch o.op {
	case agentapi.ReplaceOperation:
		_, spec, err := journalSpecOf[agentapi.ReplaceSpec](o, dir)
		if err != nil {
			return agentapi.AgentPodSpec{}, err
		}
		return spec.Pod(), nil
	case agentapi.RecoverOperation:
		_, spec, err := journalSpecOf[agentapi.RecoverSpec](o, dir)
		if err != nil {
			return agentapi.AgentPodSpec{}, err
		}
		return spec.Pod(), nil
	}
	_, spec, err := o.journalSpec(dir)
	if err != nil {
		return agentapi.AgentPodSpec{}, err
	}
	return spec.Pod(), nil
}

// journalSpec reads the journal in dir and the spec it holds, checked as
// a fresh one: the static pod dir it names is where pods are written.
func (o *options) journalSpec(dir string) (*agentapi.Journal, *agentapi.RestoreSpec, error) {
	j, err := agentapi.LoadJournal(filepath.Join(dir, agentapi.JournalFile))
	if err != nil {
		return nil, nil, fmt.Errorf("restore %s: %w", o.id, err)
	}
	var spec agentapi.RestoreSpec
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		return nil, nil, fmt.Errorf("restore %s: the journal holds no readable spec: %w", o.id, err)
	}
	if err := spec.Validate(); err != nil {
		return nil, nil, fmt.Errorf("restore %s: the journal's spec: %w; nothing was changed: inspect it by hand", o.id, err)
	}
	return j, &spec, nil
}

// agentPod is the static pod that runs `<op> sub` with claim token.
func (o *options) agentPod(spec agentapi.AgentPodSpec, sub, token string) ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the agent binary: %w", err)
	}
	return agent.AgentPod(spec, o.root, exe, o.journalRoot, sub, token)
}

// staticPodFile is where the agent's static pod for `<op> sub` goes.
func (o *options) staticPodFile(spec agentapi.AgentPodSpec, sub string) string {
	return filepath.Join(o.root, filepath.FromSlash(path.Join(spec.StaticPodDir, spec.PodFile(sub))))
}

// printStarted prints where the agent runs, for the plugin to read; to
// a person following the steps (--follow, in a node script), in words.
func (o *options) printStarted(pid int) error {
	node := path.Join(o.journalRoot, o.id)
	if o.follow {
		_, err := fmt.Fprintf(o.stderr, "The agent runs %s %s; its journal is %s and its log %s. Following its steps:\n",
			o.op, o.id, path.Join(node, agentapi.JournalFile), path.Join(node, agentapi.LogFile))
		return err
	}
	b, err := json.Marshal(agentapi.Started{PID: pid, Journal: path.Join(node, agentapi.JournalFile), Log: path.Join(node, agentapi.LogFile), NotBefore: o.notBefore})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "%s\n", b)
	return err
}

// startStaticPod writes the agent's static pod into the node's static
// pod dir and waits until the agent it runs has claimed the journal.
func (o *options) startStaticPod(dir string, spec agentapi.AgentPodSpec, sub string) error {
	if agent.Held(filepath.Join(dir, lockFile)) {
		return fmt.Errorf("an agent is running %s %s now: wait until `%s status` shows agentRunning false, then retry", o.op, o.id, o.op)
	}
	token, err := newClaim()
	if err != nil {
		return err
	}
	pod, err := o.agentPod(spec, sub, token)
	if err != nil {
		return err
	}
	file := o.staticPodFile(spec, sub)
	if _, err := os.Lstat(file); err == nil {
		return fmt.Errorf("the agent's static pod %s is there already: an agent runs %s %s or is about to", file, o.op, o.id)
	}
	if err := agent.WriteFileAtomic(file, pod, 0o600); err != nil {
		return fmt.Errorf("start the agent's static pod: %w", err)
	}
	jp := filepath.Join(dir, agentapi.JournalFile)
	var j *agentapi.Journal
	deadline := time.Now().Add(o.handoverWait)
	for {
		j, err = agentapi.LoadJournal(jp)
		if err == nil && j.Claim == token {
			break
		}
		if time.Now().After(deadline) {
			return o.abandon(dir, file, token)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return o.printStarted(j.PID)
}

// abandon takes out a static pod whose agent never claimed the journal:
// nothing ran, so a journal that nobody claimed ends as rolled back (a
// fresh one then no longer blocks the next restore).
func (o *options) abandon(dir, file, token string) error {
	why := fmt.Errorf("the kubelet did not start the agent's static pod %s within %s, or the agent failed at once; see the kubelet's log, `crictl ps -a --name agent` on the node, and %s",
		path.Base(file), o.handoverWait, path.Join(o.journalRoot, o.id, agentapi.LogFile))
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w; removing it failed too: %v", why, err)
	}
	lock, err := agent.TryLock(filepath.Join(dir, lockFile), 5*time.Second)
	if err != nil {
		return fmt.Errorf("%w; an agent holds the journal now (%v): see `restore status`", why, err)
	}
	defer lock.Unlock()
	jp := filepath.Join(dir, agentapi.JournalFile)
	j, err := agentapi.LoadJournal(jp)
	if err != nil || j.Claim == token || j.Terminal() {
		return why
	}
	if j.PID == 0 && j.Phase == agentapi.PhaseRunning {
		j.Phase, j.Error = agentapi.PhaseRolledBack, "nothing ran: "+why.Error()
		if err := agent.SaveJournal(j, jp); err != nil {
			return fmt.Errorf("%w; %v", why, err)
		}
	}
	return why
}

func newClaim() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// asStaticPod runs fn as the body of the agent's static pod: its log goes
// to the journal dir too, and once the operation has ended (done, failed
// or rolled back) the pod's manifest leaves the static pod dir, so that
// the kubelet stops it, and it exits 0. An error before that exits
// non-zero: the kubelet restarts the agent, which resumes.
func (o *options) asStaticPod(dir string, fn func() error) error {
	logf, err := os.OpenFile(filepath.Join(dir, agentapi.LogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		defer logf.Close()
		o.stderr = io.MultiWriter(o.stderr, logf)
	}
	err = fn()
	j, jerr := agentapi.LoadJournal(filepath.Join(dir, agentapi.JournalFile))
	if jerr != nil || !j.Terminal() {
		if err == nil {
			err = jerr
		}
		return err
	}
	if err != nil {
		o.logf("%s %s: %v", o.op, o.id, err)
	}
	record := filepath.Join(dir, path.Base(o.staticPod))
	os.Remove(record) // an earlier record of the same operation
	self := filepath.Join(o.root, filepath.FromSlash(o.staticPod))
	if merr := agent.MoveAside(self, record); merr != nil {
		if rerr := os.Remove(self); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return errors.Join(merr, rerr)
		}
	}
	o.logf("%s %s: %s; took the agent's static pod out of the static pod dir (kept as %s)", o.op, o.id, j.Phase, record)
	return nil
}
