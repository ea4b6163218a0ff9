package doctor

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// findings gathers what is wrong with one thing, and how badly.
type findings struct {
	worst Severity
	what  []string
	fixes []string
}

func (f *findings) add(s Severity, what, fix string) {
	if s.rank() > f.worst.rank() {
		f.worst = s
	}
	f.what = append(f.what, what)
	if fix != "" && !slices.Contains(f.fixes, fix) {
		f.fixes = append(f.fixes, fix)
	}
}

func (f *findings) result(member, okText string) Result {
	if f.worst == "" || f.worst == OK {
		return ok(member, "%s", okText)
	}
	return res(member, f.worst, strings.Join(f.fixes, "; "), "%s", strings.Join(f.what, "; "))
}

func isLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// plainURLs judges URLs that should be https: plain http beyond
// loopback is a fail, on loopback only a warning.
func plainURLs(f *findings, flag string, urls []string) {
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://") {
			continue
		}
		if isLoopback(u) {
			f.add(Warn, fmt.Sprintf("--%s has plain-http %s", flag, u), "serve https on every listener")
		} else {
			f.add(Fail, fmt.Sprintf("--%s has plain-http %s: anyone on the network reads and writes every key", flag, u),
				fmt.Sprintf("use https in --%s with --cert-file/--key-file", flag))
		}
	}
}

func checkClientTLS(fs *Facts) []Result {
	var out []Result
	for _, m := range fs.Members {
		p := m.Pod
		var f findings
		plainURLs(&f, "listen-client-urls", p.ListenClientURLs)
		plainURLs(&f, "advertise-client-urls", p.AdvertiseClientURLs)
		if p.TLS() && !p.Client.ClientCertAuth {
			f.add(Fail, "--client-cert-auth is off: any client that reaches the port is trusted", "set --client-cert-auth=true with --trusted-ca-file in the etcd manifest")
		}
		if p.AutoTLS {
			f.add(Warn, "--auto-tls: self-signed client certificates", "use certificates signed by the etcd CA (kubeadm's etcd/server.crt)")
		}
		out = append(out, f.result(m.Name(), "https client URLs, --client-cert-auth on"))
	}
	return out
}

func checkPeerTLS(fs *Facts) []Result {
	var out []Result
	for _, m := range fs.Members {
		p := m.Pod
		var f findings
		plainURLs(&f, "listen-peer-urls", p.ListenPeerURLs)
		plainURLs(&f, "initial-advertise-peer-urls", p.InitialAdvertisePeerURLs)
		if p.Peer.CertFile != "" && !p.Peer.ClientCertAuth {
			f.add(Fail, "--peer-client-cert-auth is off: anything that reaches the peer port can join raft", "set --peer-client-cert-auth=true with --peer-trusted-ca-file in the etcd manifest")
		}
		if p.PeerAutoTLS {
			f.add(Warn, "--peer-auto-tls: self-signed peer certificates", "use peer certificates signed by the etcd CA (kubeadm's etcd/peer.crt)")
		}
		out = append(out, f.result(m.Name(), "https peer URLs, --peer-client-cert-auth on"))
	}
	return out
}

func checkMetricsURL(fs *Facts) []Result {
	var out []Result
	for _, m := range fs.Members {
		var f findings
		for _, u := range m.Pod.ListenMetricsURLs {
			if strings.HasPrefix(u, "http://") && !isLoopback(u) {
				f.add(Warn, fmt.Sprintf("--listen-metrics-urls serves plain http beyond loopback: %s", u),
					"listen on http://127.0.0.1:2381 (kubeadm's default), or use https")
			}
		}
		out = append(out, f.result(m.Name(), "metrics on loopback or https"))
	}
	return out
}

// clockSkew is how far ahead of this machine's clock a certificate's
// start may lie: it was issued on the node, whose clock may differ.
const clockSkew = 5 * time.Minute

// Certificates expiring sooner than these warn, then fail.
const (
	certWarn = 30 * 24 * time.Hour
	certFail = 7 * 24 * time.Hour
)

// certFiles are the certificates (never keys) check reads on a node.
func certFiles(m *MemberFacts) []struct{ role, path string } {
	p := m.Pod
	all := []struct{ role, path string }{
		{"server", p.Client.CertFile}, {"peer", p.Peer.CertFile}, {"CA", p.Client.TrustedCAFile}, {"peer CA", p.Peer.TrustedCAFile},
	}
	var out []struct{ role, path string }
	seen := map[string]bool{}
	for _, c := range all {
		if c.path != "" && !seen[c.path] {
			seen[c.path] = true
			out = append(out, c)
		}
	}
	return out
}

func checkCertExpiry(fs *Facts) []Result {
	var out []Result
	for _, m := range fs.Members {
		files := certFiles(m)
		switch {
		case len(files) == 0:
			out = append(out, res(m.Name(), NotChecked, "", "not checked: the pod spec names no certificate"))
			continue
		case m.NodeErr != nil:
			out = append(out, notChecked(m.Name(), m.NodeErr))
			continue
		case m.Node == nil:
			out = append(out, notChecked(m.Name(), fmt.Errorf("the node was not read")))
			continue
		}
		var f findings
		var soonest time.Time
		for _, c := range files {
			if err := m.Node.FileErrs[c.path]; err != nil {
				f.add(NotChecked, fmt.Sprintf("%s certificate %s not read: %s", c.role, c.path, hint.OneLine(err.Error())), "")
				continue
			}
			certs, err := parseCerts(m.Node.Files[c.path])
			if err != nil {
				f.add(Fail, fmt.Sprintf("%s certificate %s: %v", c.role, c.path, err), "replace the file with a PEM certificate")
				continue
			}
			for _, cert := range certs {
				judgeCert(&f, fs.Now, c.role, c.path, cert)
				if soonest.IsZero() || cert.NotAfter.Before(soonest) {
					soonest = cert.NotAfter
				}
			}
		}
		out = append(out, f.result(m.Name(), fmt.Sprintf("%d certificate file(s); the first expires %s (in %s)", len(files), soonest.UTC().Format(time.DateOnly), days(soonest.Sub(fs.Now)))))
	}
	return out
}

func judgeCert(f *findings, now time.Time, role, path string, c *x509.Certificate) {
	left := c.NotAfter.Sub(now)
	renew := "renew it (kubeadm: kubeadm certs renew etcd-" + strings.ReplaceAll(strings.ToLower(role), " ", "-") + ", then restart etcd)"
	expired := renew
	if role == "CA" || role == "peer CA" {
		renew = "rotate the etcd CA and every certificate it signed before then"
		expired = "rotate the etcd CA now, then reissue every certificate it signed: peers and clients already refuse them"
	}
	switch {
	case now.Add(clockSkew).Before(c.NotBefore):
		f.add(Fail, fmt.Sprintf("%s certificate %s is not valid before %s", role, path, c.NotBefore.UTC().Format(time.RFC3339)),
			"check this machine's and the node's clocks (the time here is "+now.UTC().Format(time.RFC3339)+"), then the certificate")
	case left <= 0:
		f.add(Fail, fmt.Sprintf("%s certificate %s expired %s ago", role, path, days(-left)), expired)
	case left < certFail:
		f.add(Fail, fmt.Sprintf("%s certificate %s expires in %s (%s)", role, path, days(left), c.NotAfter.UTC().Format(time.DateOnly)), renew)
	case left < certWarn:
		f.add(Warn, fmt.Sprintf("%s certificate %s expires in %s (%s)", role, path, days(left), c.NotAfter.UTC().Format(time.DateOnly)), renew)
	}
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate in it")
	}
	return out, nil
}

func days(d time.Duration) string {
	if d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// checkDataDir: the data dir holds every key, Secrets included; etcd
// itself warns when it is not 0700.
func checkDataDir(fs *Facts) []Result {
	var out []Result
	for _, m := range fs.Members {
		dir := m.Pod.DataDir
		switch {
		case m.NodeErr != nil:
			out = append(out, notChecked(m.Name(), m.NodeErr))
			continue
		case m.Node == nil:
			out = append(out, notChecked(m.Name(), fmt.Errorf("the node was not read")))
			continue
		case m.Node.ModeErrs[dir] != nil:
			out = append(out, notChecked(m.Name(), m.Node.ModeErrs[dir]))
			continue
		}
		mode, err := strconv.ParseUint(m.Node.Modes[dir], 8, 32)
		if err != nil {
			out = append(out, notChecked(m.Name(), fmt.Errorf("stat printed %q for %s", m.Node.Modes[dir], dir)))
			continue
		}
		fix := fmt.Sprintf("chmod 700 %s on node %s", dir, m.Pod.Node)
		switch {
		case mode&0o007 != 0:
			out = append(out, res(m.Name(), Fail, fix, "data dir %s is mode %04o: every user on the node can read it, Secrets included", dir, mode))
		case mode&0o070 != 0:
			out = append(out, res(m.Name(), Warn, fix, "data dir %s is mode %04o, not 0700", dir, mode))
		default:
			out = append(out, ok(m.Name(), "data dir %s is mode %04o", dir, mode))
		}
	}
	return out
}
