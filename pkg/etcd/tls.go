package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// Material is a member's client TLS material, held in memory only.
type Material struct {
	CA, Cert, Key []byte
}

// ClientConfig builds a TLS config that verifies the server against the
// CA and accepts any of names: a port-forward reaches the member on its
// loopback, so its certificate need not name what the client dialled;
// kubeadm's carry 127.0.0.1, other installers may only name the node.
func (m *Material) ClientConfig(names []string) (*tls.Config, error) {
	pool, certs, err := m.parse()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
	// Name checking is done below against every acceptable name, so the
	// default single-name check is switched off, not verification.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyPeer(cs, pool, names)
	}
	return cfg, nil
}

// parse is the one place bad material gets its error: no retry heals a
// file, so both are permanent.
// Check reports whether the material parses: a CA, and a certificate
// that pairs with the key.
func (m *Material) Check() error {
	_, _, err := m.parse()
	return err
}

func (m *Material) parse() (*x509.CertPool, []tls.Certificate, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(m.CA) {
		return nil, nil, hint.Permanent(errors.New("the trusted CA file holds no PEM certificate"), BadTLSFilesHint)
	}
	if len(m.Cert) == 0 {
		return pool, nil, nil
	}
	pair, err := tls.X509KeyPair(m.Cert, m.Key)
	if err != nil {
		return nil, nil, hint.Permanent(fmt.Errorf("the client certificate and key from the pod spec do not form a pair: %w", err), BadTLSFilesHint)
	}
	return pool, []tls.Certificate{pair}, nil
}

// BadTLSFilesHint is the fix for TLS files that are not what the pod spec
// says.
const BadTLSFilesHint = "Check the files the etcd pod spec names (--trusted-ca-file, --cert-file, --key-file) on the node, or use --transport=exec"

func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, names []string) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("the member presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("member certificate rejected: %w", err)
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			for _, sip := range leaf.IPAddresses {
				if sip.Equal(ip) {
					return nil
				}
			}
			continue
		}
		if leaf.VerifyHostname(n) == nil {
			return nil
		}
	}
	return fmt.Errorf("member certificate rejected: it is valid for %v %v, none of %v", leaf.DNSNames, leaf.IPAddresses, names)
}

// TLSSource provides a member's client TLS material.
type TLSSource interface {
	Material(ctx context.Context, m discovery.Member) (*Material, error)
}
