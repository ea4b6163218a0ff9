package etcd

// The transports' names, as --transport takes them.
const (
	TransportExec        = "exec"
	TransportPortForward = "port-forward"
)

// Policy is how a command reaches etcd: the transport it tries first
// under --transport auto, and whether auto may move to the other one
// (when, see Auto). Each command states its policy in one line, and its
// help says it (Help).
type Policy struct {
	// First is TransportExec or TransportPortForward.
	First string
	// Only: the command can use First alone, and --transport does not
	// apply to it.
	Only bool
}

var (
	// Reads are status, health, members, the member lookups of ctl and
	// metrics, and restore's checks: exec first, which starts no helper
	// pod, then port-forward when etcdctl is missing or RBAC denies
	// pods/exec.
	Reads = Policy{First: TransportExec}
	// Maintenance is defrag, alarm, compact, move-leader, check and
	// usage: port-forward first, which speaks etcd's whole client API
	// (one alarm disarmed alone, paged reads), then exec when the helper
	// pod cannot start, as under a NOSPACE alarm.
	Maintenance = Policy{First: TransportPortForward}
	// ClientAPI is what only client/v3 does: backup's stream, get, and
	// restore's check of the restored keys.
	ClientAPI = Policy{First: TransportPortForward, Only: true}
	// Etcdctl is ctl, which runs etcdctl itself.
	Etcdctl = Policy{First: TransportExec, Only: true}
)

func (p Policy) other() string {
	if p.First == TransportExec {
		return TransportPortForward
	}
	return TransportExec
}

// Help is the policy in one line, for a command's help.
func (p Policy) Help() string {
	switch {
	case p.Only && p.First == TransportExec:
		return "Transport: always exec (etcdctl in the etcd container); --transport does not apply."
	case p.Only:
		return "Transport: always port-forward (etcd's client API, with the TLS material read on the node by a helper pod); --transport does not apply."
	case p.First == TransportExec:
		return "Transport (--transport auto): exec, which starts no helper pod; port-forward when etcdctl is missing from the image or RBAC denies pods/exec."
	}
	return "Transport (--transport auto): port-forward, for etcd's whole client API; exec (etcdctl in the etcd containers) when the helper pod that reads the TLS material cannot start, as under a NOSPACE alarm."
}
