package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

// UseMembers sets the member's endpoint and etcd's client files from
// the etcd pods. The schedule's pod runs on whichever control-plane node
// the scheduler picks, with one config, so every pod must name the same
// ones (kubeadm's do: https://127.0.0.1:2379 and /etc/kubernetes/pki/etcd).
func (c *Config) UseMembers(ms []discovery.Member) error {
	if len(ms) == 0 {
		return discovery.ErrNoMembers
	}
	type access struct{ endpoint, cert, key, ca string }
	of := func(m discovery.Member) access {
		return access{m.LocalClientURL(), m.Client.CertFile, m.Client.KeyFile, m.Client.TrustedCAFile}
	}
	say := func(m discovery.Member) string {
		a := of(m)
		return fmt.Sprintf("%s has %s, --cert-file=%s --key-file=%s --trusted-ca-file=%s", m.Pod, a.endpoint, a.cert, a.key, a.ca)
	}
	first := of(ms[0])
	for _, m := range ms[1:] {
		if of(m) != first {
			return hint.Permanent(fmt.Errorf("the etcd pods differ in where a pod on their node reaches them: %s; %s", say(ms[0]), say(m)),
				"a schedule runs on any control-plane node with one config: make the etcd manifests agree (kubeadm's do), or take backups with kubectl etcd backup")
		}
	}
	switch {
	case first.cert == "" || first.key == "" || first.ca == "":
		return hint.Permanent(fmt.Errorf("etcd pod %s names no client certificate, key and CA (--cert-file, --key-file, --trusted-ca-file)", ms[0].Pod),
			"a schedule reaches etcd over TLS with the files the pod names; take backups with kubectl etcd backup")
	case !strings.HasPrefix(first.endpoint, "https://"):
		return hint.Permanent(fmt.Errorf("etcd pod %s serves clients at %s, without TLS", ms[0].Pod, first.endpoint),
			"a schedule reaches etcd only over TLS; take backups with kubectl etcd backup")
	}
	c.Endpoint, c.CertFile, c.KeyFile, c.CAFile = first.endpoint, first.cert, first.key, first.ca
	return nil
}

// S3 credentials, as the Secret holds them and the job reads them.
const (
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
)

// Preflight checks what the schedule's pods will need in the cluster:
// its namespace, S3's Secret with both keys (only the keys' presence is
// read), the PVC. Something missing is an error when strict (an
// install), a warning otherwise (a dry run, whose output may be applied
// with them); a Secret without a key is always an error.
func Preflight(ctx context.Context, cs kubernetes.Interface, c Config, strict bool) (warnings []string, err error) {
	missing := func(err error) error {
		if strict {
			return err
		}
		warnings = append(warnings, hint.OneLine(err.Error()))
		return nil
	}
	ns, nsErr := cs.CoreV1().Namespaces().Get(ctx, c.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(nsErr):
		if err := missing(hint.Permanent(fmt.Errorf("namespace %s does not exist", c.Namespace), "create it: kubectl create namespace %s", c.Namespace)); err != nil {
			return warnings, err
		}
	case nsErr == nil:
		if level := ns.Labels["pod-security.kubernetes.io/enforce"]; level != "" && level != "privileged" {
			warnings = append(warnings, fmt.Sprintf("namespace %s enforces the %s Pod Security Standard, which rejects the schedule's pod (host network, etcd's client files mounted from the node): label it pod-security.kubernetes.io/enforce=privileged, or install the schedule in kube-system", c.Namespace, level))
		}
	}
	switch c.Dest.Kind {
	case DestS3:
		err = checkSecret(ctx, cs, c.Namespace, c.Dest.Secret, missing)
	case DestPVC:
		_, err = cs.CoreV1().PersistentVolumeClaims(c.Namespace).Get(ctx, c.Dest.Claim, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			warnings = append(warnings, fmt.Sprintf("PersistentVolumeClaim %s is not in namespace %s (yet): the schedule's pods wait for it", c.Dest.Claim, c.Namespace))
			err = nil
		} else if err != nil {
			err = discovery.ExplainAPIError(err, "get", "persistentvolumeclaims", c.Namespace)
		}
	}
	return warnings, err
}

// checkSecret checks that S3's Secret is there with both keys, non-empty.
func checkSecret(ctx context.Context, cs kubernetes.Interface, ns, name string, missing func(error) error) error {
	_, _, err := S3Credentials(ctx, cs, ns, name)
	var gone *noSecret
	if errors.As(err, &gone) {
		return missing(err)
	}
	return err
}

// S3Credentials reads the access key id and secret key in S3's Secret
// ns/name, both non-empty. The caller keeps them in memory only and
// prints neither.
func S3Credentials(ctx context.Context, cs kubernetes.Interface, ns, name string) (keyID, secretKey string, err error) {
	create := fmt.Sprintf("kubectl -n %s create secret generic %s --from-literal=%s=... --from-literal=%s=...", ns, name, EnvAccessKeyID, EnvSecretAccessKey)
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", "", hint.Permanent(&noSecret{ns, name}, "create it with the S3 credentials: %s", create)
	}
	if err != nil {
		return "", "", discovery.ExplainAPIError(err, "get", "secrets", ns)
	}
	key := func(k string) string {
		if v := s.Data[k]; len(v) > 0 {
			return string(v)
		}
		return s.StringData[k]
	}
	var errs []error
	for _, k := range []string{EnvAccessKeyID, EnvSecretAccessKey} {
		if key(k) == "" {
			errs = append(errs, fmt.Errorf("secret %s/%s has no key %s, or it is empty", ns, name, k))
		}
	}
	if len(errs) > 0 {
		return "", "", hint.Permanent(errors.Join(errs...), "the schedule's pod reads the S3 credentials from keys %s and %s of that Secret: %s", EnvAccessKeyID, EnvSecretAccessKey, create)
	}
	return key(EnvAccessKeyID), key(EnvSecretAccessKey), nil
}

// noSecret is the error of a Secret that is not there.
type noSecret struct{ ns, name string }

func (e *noSecret) Error() string {
	return fmt.Sprintf("secret %s is not in namespace %s", e.name, e.ns)
}
