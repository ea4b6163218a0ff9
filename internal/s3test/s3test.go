// Package s3test starts a real S3 server for integration tests:
// versitygw, an S3 gateway whose POSIX backend keeps each bucket as a
// dir, on a free loopback port, with a root key of its own.
package s3test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Install is how to build the server the tests expect.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Region is the server's region.
const Region = "us-east-1"

// Server is one running versitygw.
type Server struct {
	// Endpoint is its URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are its root user's.
	AccessKey, SecretKey string
	// Dir is the POSIX backend's root: a bucket is a dir in it.
	Dir string
	// Log is the file the server's output goes to.
	Log string
	// CA is, for a server started with StartTLS, the PEM certificate
	// that signed its own.
	CA []byte
	// certFile and keyFile are its certificate, for StartTLS.
	certFile, keyFile string
}

// Binary finds versitygw: $VERSITYGW, else versitygw in PATH, else in
// ~/go/bin, else in $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var tried []string
	if home, err := os.UserHomeDir(); err == nil {
		tried = append(tried, filepath.Join(home, "go", "bin", "versitygw"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			tried = append(tried, filepath.Join(dir, "bin", "versitygw"))
		}
	}
	for _, p := range tried {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no versitygw: not in $VERSITYGW, PATH, or %s", strings.Join(tried, ", "))
}

// Start starts versitygw with the buckets given, and stops it, by the
// PID it started, when the test ends. Without the binary the test fails
// saying how to build it; under -short it is skipped instead.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	return start(t, false, buckets)
}

// StartTLS is Start with https: a certificate for 127.0.0.1, signed by
// a CA of its own, in Server.CA.
func StartTLS(t testing.TB, buckets ...string) *Server {
	t.Helper()
	return start(t, true, buckets)
}

func start(t testing.TB, withTLS bool, buckets []string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if testing.Short() {
			t.Skipf("%v (build it: %s)", err, Install)
		}
		t.Fatalf("%v: build it with\n\t%s\nor point VERSITYGW at it", err, Install)
	}
	dir := t.TempDir()
	s := &Server{AccessKey: "s3test" + randomHex(4), SecretKey: randomHex(20), Dir: filepath.Join(dir, "root"), Log: filepath.Join(dir, "versitygw.log")}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if withTLS {
		s.certFile, s.keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		if s.CA, err = writeCert(s.certFile, s.keyFile); err != nil {
			t.Fatal(err)
		}
	}
	// A port another process takes between our probe and versitygw's
	// bind only costs another try.
	for try := 1; ; try++ {
		err := s.launch(t, bin)
		if err == nil {
			break
		}
		if try == 3 {
			t.Fatalf("versitygw did not start: %v\n%s", err, tail(s.Log))
		}
	}
	for _, b := range buckets {
		s.CreateBucket(t, b)
	}
	return s
}

func (s *Server) launch(t testing.TB, bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Endpoint = "http://" + port
	args := []string{"--port", port, "--region", Region, "--quiet"}
	if s.CA != nil {
		s.Endpoint = "https://" + port
		args = append(args, "--cert", s.certFile, "--key", s.keyFile)
	}
	logf, err := os.Create(s.Log)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, append(args, "posix", s.Dir)...)
	// The keys go in the environment, not on a command line anyone can read.
	cmd.Env = append(cleanEnv(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited: %v", bin, err)
		case <-time.After(50 * time.Millisecond):
		}
		// Any HTTP answer (a 403 to an unsigned request) means it serves.
		if resp, err := s.httpClient().Get(s.Endpoint + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("%s did not answer at %s within 15s", bin, s.Endpoint)
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("versitygw's log:\n%s", tail(s.Log))
		}
	})
	return nil
}

// cleanEnv is this process's environment without what would configure
// versitygw or an S3 client behind the test's back.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VGW_") && !strings.HasPrefix(kv, "ROOT_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// httpClient trusts the server's CA, if it has one.
func (s *Server) httpClient() *http.Client {
	if s.CA == nil {
		return http.DefaultClient
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// Client is an S3 client of the root user, to arrange and inspect what
// the code under test does.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		HTTPClient:   s.httpClient(),
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates a bucket.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
}

// Put writes an object as it is.
func (s *Server) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	_, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("putting s3://%s/%s: %v", bucket, key, err)
	}
}

// ErrNoObject is Get's error for a key with nothing there.
var ErrNoObject = errors.New("no such object")

// Get reads an object whole.
func (s *Server) Get(t testing.TB, bucket, key string) ([]byte, error) {
	t.Helper()
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		var api interface{ ErrorCode() string }
		if errors.As(err, &api) && api.ErrorCode() == "NoSuchKey" {
			return nil, ErrNoObject
		}
		return nil, err
	}
	defer out.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(out.Body)
	return b.Bytes(), err
}

// Uploads are the keys of the bucket's multipart uploads in progress.
func (s *Server) Uploads(t testing.TB, bucket string) []string {
	t.Helper()
	out, err := s.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("listing the uploads in %s: %v", bucket, err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// writeCert writes a certificate for 127.0.0.1 and its key, and returns
// the PEM of the CA that signed it.
func writeCert(certFile, keyFile string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "s3test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "s3test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
