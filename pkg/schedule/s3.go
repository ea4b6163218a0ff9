package schedule

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// A snapshot goes to object storage as a multipart upload, one part at
// a time while it streams: nothing is on the job's disk (its root is
// read-only) and at most two parts are in its memory (its limit is
// 256Mi), and nothing is under the object's key until the upload is
// completed, which Save does only once the snapshot is verified.

const (
	// DefaultPartSize is the size of each part but the last: 16 MiB
	// parts reach etcd's 8 GiB limit in 512 of S3's 10000.
	DefaultPartSize = 16 << 20
	// minPartSize is S3's smallest part but the last.
	minPartSize = 5 << 20
	maxParts    = 10000
	// partTimeout bounds the upload of one part, callTimeout any other
	// call: a storage that accepts a connection and then says nothing
	// must not hold the job until its deadline.
	partTimeout = 5 * time.Minute
	callTimeout = time.Minute
)

// S3Config is an S3-compatible destination as the job's pod knows it:
// the schedule's Dest, and the credentials read from the Secret it
// names.
type S3Config struct {
	// Endpoint is the storage's URL, such as http://minio.backup:9000;
	// "" is AWS, addressed by the region.
	Endpoint string
	// Region is "us-east-1" when empty, which most S3-compatible
	// storage accepts.
	Region string
	Bucket string
	// Prefix is a "dir" in the bucket; "" is the bucket's top.
	Prefix string
	// AccessKeyID and SecretAccessKey are static credentials. The
	// secret key is never printed, in an error or anywhere else.
	AccessKeyID, SecretAccessKey string
	// CredentialsFrom says where they come from, for errors: "the
	// schedule's Secret" when empty.
	CredentialsFrom string
	// CABundle is PEM certificates that an https endpoint's certificate
	// chains to, trusted beside the system's.
	CABundle []byte
	// PartSize is DefaultPartSize when 0, and at least 5 MiB.
	PartSize int
	// Notify, if set, is told what could not be cleaned up, such as an
	// upload whose abort failed.
	Notify func(format string, args ...any)
}

// S3 is a destination in S3-compatible object storage (AWS, MinIO,
// versitygw, Ceph...), addressed path-style when an endpoint is given.
type S3 struct {
	endpoint, region, bucket, prefix string
	// creds says where the credentials come from.
	creds    string
	partSize int
	client   *s3.Client
	notify   func(format string, args ...any)
	// pageSize, when set, is how many keys a listing asks for at once.
	pageSize int32
}

// NewS3 checks c and builds its client; it reaches no server.
func NewS3(c S3Config) (*S3, error) {
	prefix, err := S3Prefix(c.Prefix)
	if err != nil {
		return nil, err
	}
	if c.CredentialsFrom == "" {
		c.CredentialsFrom = "the schedule's Secret"
	}
	switch {
	case c.Bucket == "" || strings.ContainsAny(c.Bucket, "/ "):
		return nil, hint.Permanent(fmt.Errorf("S3 bucket %q", c.Bucket), "name the bucket as in s3://BUCKET/PREFIX")
	case c.AccessKeyID == "" || c.SecretAccessKey == "":
		return nil, hint.Permanent(errors.New("no S3 credentials"),
			"%s must hold %s and %s, both non-empty", c.CredentialsFrom, EnvAccessKeyID, EnvSecretAccessKey)
	case c.PartSize != 0 && c.PartSize < minPartSize:
		return nil, fmt.Errorf("S3 part size %d: S3 refuses parts below 5 MiB but the last", c.PartSize)
	}
	s := &S3{endpoint: c.Endpoint, region: c.Region, bucket: c.Bucket, prefix: prefix, creds: c.CredentialsFrom, partSize: c.PartSize, notify: c.Notify}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	if s.endpoint == "" {
		s.endpoint = "AWS S3"
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	httpClient, err := s3HTTPClient(c)
	if err != nil {
		return nil, err
	}
	key, secret := c.AccessKeyID, c.SecretAccessKey
	o := s3.Options{
		Region:     s.region,
		HTTPClient: httpClient,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, Source: s.creds}, nil
		}),
		// The parts' payload is signed with its sha256, which the storage
		// checks; the SDK's newer streamed checksums are what many
		// S3-compatible servers refuse.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			// u itself is not printed: it may hold a password.
			return nil, hint.Permanent(errors.New("the S3 endpoint is not an http:// or https:// URL without credentials"),
				"give it as https://HOST[:PORT], such as https://minio.backup.svc:9000; credentials belong in the Secret")
		}
		o.BaseEndpoint = aws.String(c.Endpoint)
		o.UsePathStyle = true
	}
	s.client = s3.New(o)
	return s, nil
}

func s3HTTPClient(c S3Config) (*awshttp.BuildableClient, error) {
	hc := awshttp.NewBuildableClient()
	if len(c.CABundle) == 0 {
		return hc, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(c.CABundle) {
		return nil, hint.Permanent(errors.New("the S3 CA bundle holds no PEM certificate"),
			"give the CA certificate(s) that signed the endpoint's certificate, in PEM")
	}
	return hc.WithTransportOptions(func(t *http.Transport) {
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.RootCAs = pool
	}), nil
}

// S3Prefix normalises a prefix to "" or "a/b/": its own slashes at
// either end do not matter, but an empty, "." or ".." segment is
// refused, as it names no dir on a file-backed storage.
func S3Prefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsFunc(seg, unicode.IsControl) {
			return "", hint.Permanent(fmt.Errorf("S3 prefix %q", p),
				"give it as dirs separated by single slashes, without '.', '..' or control characters, such as etcd/prod")
		}
	}
	return p + "/", nil
}

// checkObjectName refuses a name that would reach outside the prefix:
// the schedule names its snapshots itself, but Remove takes what a
// listing returned.
func checkObjectName(name string) error {
	if name == "" || strings.Contains(name, "/") || strings.Contains(name, "..") || strings.ContainsFunc(name, unicode.IsControl) {
		return hint.Permanent(fmt.Errorf("object name %q", name), "a schedule's snapshots are named without '/', '..' or control characters")
	}
	return nil
}

// String implements Destination: s3://BUCKET/PREFIX, never a credential.
func (s *S3) String() string { return "s3://" + s.bucket + "/" + s.prefix }

func (s *S3) url(key string) string { return "s3://" + s.bucket + "/" + key }

// Sink implements Destination. It refuses a name already taken, as
// FileSink does, so a schedule never replaces a snapshot.
func (s *S3) Sink(ctx context.Context, name string) (snapshot.Sink, error) {
	if err := checkObjectName(name); err != nil {
		return nil, err
	}
	// A listing answers with a reason where HEAD cannot (a missing
	// bucket, a wrong key), and the retention lists anyway.
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := s.client.ListObjectsV2(cctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &s.prefix, MaxKeys: aws.Int32(1)}); err != nil {
		return nil, s.explain("listing "+s.String(), err)
	}
	key := s.prefix + name
	if err := s.absent(ctx, key); err != nil {
		return nil, err
	}
	return &s3Sink{s: s, ctx: ctx, key: key}, nil
}

// absent refuses key when an object is there.
func (s *S3) absent(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	var nf *types.NotFound
	switch {
	case errors.As(err, &nf):
		return nil
	case err == nil:
		return s.existsError(key)
	}
	return s.explain("checking "+s.url(key), err)
}

func (s *S3) existsError(key string) error {
	return hint.Permanent(fmt.Errorf("%s already exists at %s", s.url(key), s.endpoint),
		"a schedule never overwrites a snapshot: remove that object, or let the next run take a new name")
}

// List implements Destination: the objects right under the prefix, not
// those in deeper "dirs".
func (s *S3) List(ctx context.Context) ([]Object, error) {
	var out []Object
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &s.prefix, Delimiter: aws.String("/")}
	if s.pageSize > 0 {
		in.MaxKeys = aws.Int32(s.pageSize)
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, s.explain("listing "+s.String(), err)
		}
		for _, o := range page.Contents {
			name, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok || name == "" || strings.Contains(name, "/") {
				continue
			}
			out = append(out, Object{Name: name, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
	}
	return out, nil
}

// Open streams the object name, a file List listed.
func (s *S3) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkObjectName(name); err != nil {
		return nil, err
	}
	key := s.prefix + name
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, s.explain("reading "+s.url(key), err)
	}
	return out.Body, nil
}

// Remove implements Destination.
func (s *S3) Remove(ctx context.Context, name string) error {
	if err := checkObjectName(name); err != nil {
		return err
	}
	key := s.prefix + name
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		return s.explain("removing "+s.url(key), err)
	}
	return nil
}

// s3Error prints what happened in the operator's words and keeps the
// SDK's error, with its request id, for errors.As.
type s3Error struct {
	msg string
	err error
}

func (e *s3Error) Error() string { return e.msg }
func (e *s3Error) Unwrap() error { return e.err }

// explain says what failed while doing what, and what to check. HEAD
// answers carry no body, so a 403 or 404 there comes without S3's code.
func (s *S3) explain(doing string, err error) error {
	say := func(format string, args ...any) error {
		return &s3Error{msg: doing + ": " + fmt.Sprintf(format, args...), err: err}
	}
	var (
		api     smithy.APIError
		resp    *smithyhttp.ResponseError
		send    *smithyhttp.RequestSendError
		unknown x509.UnknownAuthorityError
		verify  *tls.CertificateVerificationError
	)
	status := 0
	if errors.As(err, &resp) {
		status = resp.HTTPStatusCode()
	}
	code := ""
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	creds := fmt.Sprintf("check %s and %s in %s", EnvAccessKeyID, EnvSecretAccessKey, s.creds)
	switch {
	case errors.Is(err, context.Canceled):
		return say("canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return hint.With(say("%s did not answer in time", s.endpoint), "check that the storage is up, reachable and not overloaded")
	case code == "NoSuchBucket":
		return hint.Permanent(say("bucket %q does not exist at %s", s.bucket, s.endpoint),
			"create it, or name an existing bucket in the schedule's s3://BUCKET/PREFIX")
	case code == "InvalidAccessKeyId" || code == "XAdminUserNotFound": // versitygw's word for it
		return hint.Permanent(say("%s does not know the access key", s.endpoint), "%s: the access key id is wrong for this storage", creds)
	case code == "SignatureDoesNotMatch":
		return hint.Permanent(say("%s refused the request's signature", s.endpoint),
			"%s: the secret key does not match the access key (or the region, %s, is not the storage's)", creds, s.region)
	case code == "AccessDenied" || code == "AllAccessDisabled" || status == http.StatusForbidden:
		return hint.Permanent(say("%s denied access to %s (%s)", s.endpoint, s.String(), orStatus(code, status)),
			"%s, and that this key may list, read, write and delete objects in bucket %s", creds, s.bucket)
	case code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || status == http.StatusMovedPermanently:
		return hint.Permanent(say("%s says bucket %q is not in region %s (%s)", s.endpoint, s.bucket, s.region, orStatus(code, status)),
			"give the bucket's region in the schedule")
	case errors.As(err, &unknown) || errors.As(err, &verify):
		return hint.Permanent(say("the certificate of %s is not trusted: %v", s.endpoint, rootCause(err)),
			"give the CA bundle that signed it, or check the endpoint's host name")
	case errors.As(err, &send):
		return hint.With(say("%s does not answer: %v", s.endpoint, rootCause(err)),
			"check the endpoint URL, and that the storage is up and reachable from the control-plane nodes")
	case api != nil:
		return say("%s answered %s: %s", s.endpoint, orStatus(code, status), api.ErrorMessage())
	}
	return say("%v", err)
}

func orStatus(code string, status int) string {
	if code != "" && (status == 0 || code != http.StatusText(status)) {
		return code
	}
	return fmt.Sprintf("HTTP %d", status)
}

// rootCause is the network's own words (connection refused, no such
// host), without the SDK's retries and the request's URL.
func rootCause(err error) error {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return dns
	case errors.As(err, &op):
		return op
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u
	}
	return err
}

// s3Sink implements snapshot.Sink with one multipart upload per attempt.
type s3Sink struct {
	s   *S3
	ctx context.Context
	key string
	up  *s3Upload
}

// Begin implements snapshot.Sink: a retry first aborts the upload of the
// attempt before.
func (k *s3Sink) Begin() (io.Writer, error) {
	var bufs [][]byte
	if k.up != nil {
		bufs = k.up.abort()
		k.up = nil
	}
	ctx, cancel := context.WithTimeout(k.ctx, callTimeout)
	defer cancel()
	out, err := k.s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &k.s.bucket, Key: &k.key, ContentType: aws.String("application/octet-stream")})
	if err != nil {
		return nil, k.s.explain("starting the upload of "+k.s.url(k.key), err)
	}
	k.up = &s3Upload{sink: k, id: aws.ToString(out.UploadId), free: bufs}
	k.up.buf = k.up.buffer()
	return k.up, nil
}

// Abort implements snapshot.Sink.
func (k *s3Sink) Abort() {
	if k.up != nil {
		k.up.abort()
		k.up = nil
	}
}

// Commit implements snapshot.Sink: the last part, then the upload's
// completion, which is when the object appears, unless one is there by
// then.
func (k *s3Sink) Commit() error {
	u := k.up
	if u == nil {
		return errors.New("commit without an attempt")
	}
	if u.err != nil {
		return u.err
	}
	// An object smaller than a part is one part, below S3's minimum,
	// which the last part may be.
	if len(u.buf) > 0 || u.n == 0 {
		if err := u.send(); err != nil {
			return err
		}
	}
	if err := u.wait(); err != nil {
		return err
	}
	if err := k.s.absent(k.ctx, k.key); err != nil {
		return err
	}
	complete := func(ifNoneMatch *string) error {
		ctx, cancel := context.WithTimeout(k.ctx, callTimeout)
		defer cancel()
		_, err := k.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &k.s.bucket, Key: &k.key, UploadId: &u.id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
			IfNoneMatch:     ifNoneMatch,
		})
		return err
	}
	// Where the storage supports If-None-Match, it closes the race with
	// a writer that appeared since absent's check.
	err := complete(aws.String("*"))
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NotImplemented" {
		err = complete(nil)
	}
	if errors.As(err, &api) && api.ErrorCode() == "PreconditionFailed" {
		return k.s.existsError(k.key)
	}
	if err != nil {
		return k.s.explain("completing the upload of "+k.s.url(k.key), err)
	}
	k.up = nil
	return nil
}

// Retryable implements snapshot.Sink.
func (k *s3Sink) Retryable() bool { return true }

// s3Upload is one attempt's multipart upload, written as an io.Writer:
// a full part is sent in the background while the next one fills, and
// a write waits for the part before to be gone, so at most two parts
// are in memory.
type s3Upload struct {
	sink  *s3Sink
	id    string
	buf   []byte
	free  [][]byte
	n     int32
	parts []types.CompletedPart
	// sending is the part in flight, nil when none.
	sending chan partResult
	err     error
}

type partResult struct {
	part types.CompletedPart
	buf  []byte
	err  error
}

func (u *s3Upload) buffer() []byte {
	if n := len(u.free); n > 0 {
		b := u.free[n-1]
		u.free = u.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, u.sink.s.partSize)
}

func (u *s3Upload) Write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	n := 0
	for len(p) > 0 {
		k := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf, p, n = u.buf[:len(u.buf)+k], p[k:], n+k
		if len(u.buf) == cap(u.buf) {
			if err := u.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// send starts the upload of the filled part once the one before is gone.
func (u *s3Upload) send() error {
	if err := u.wait(); err != nil {
		return err
	}
	if u.n == maxParts {
		u.err = fmt.Errorf("%s would take more than %d parts of %d bytes", u.sink.s.url(u.sink.key), maxParts, u.sink.s.partSize)
		return u.err
	}
	u.n++
	num, body := u.n, u.buf
	done := make(chan partResult, 1)
	u.sending = done
	go func() { done <- u.uploadPart(num, body) }()
	u.buf = u.buffer()
	return nil
}

func (u *s3Upload) uploadPart(num int32, body []byte) partResult {
	k := u.sink
	ctx, cancel := context.WithTimeout(k.ctx, partTimeout)
	defer cancel()
	out, err := k.s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &k.s.bucket, Key: &k.key, UploadId: &u.id, PartNumber: aws.Int32(num),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
	if err != nil {
		return partResult{buf: body, err: k.s.explain(fmt.Sprintf("uploading part %d of %s", num, k.s.url(k.key)), err)}
	}
	return partResult{part: types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}, buf: body}
}

// wait waits for the part in flight, if any.
func (u *s3Upload) wait() error {
	if u.sending == nil {
		return u.err
	}
	r := <-u.sending
	u.sending = nil
	u.free = append(u.free, r.buf)
	if r.err != nil && u.err == nil {
		u.err = r.err
	}
	if r.err == nil {
		u.parts = append(u.parts, r.part)
	}
	return u.err
}

// abort discards the upload and its parts, and hands back its buffers
// for the next attempt. It runs after the attempt's context may have
// ended, so it has its own.
func (u *s3Upload) abort() [][]byte {
	u.wait()
	k := u.sink
	ctx, cancel := context.WithTimeout(context.WithoutCancel(k.ctx), callTimeout)
	defer cancel()
	_, err := k.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &k.s.bucket, Key: &k.key, UploadId: &u.id})
	if err != nil && k.s.notify != nil {
		k.s.notify("%v; a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes such leftover parts",
			k.s.explain("aborting the upload of "+k.s.url(k.key), err))
	}
	return append(u.free, u.buf)
}
