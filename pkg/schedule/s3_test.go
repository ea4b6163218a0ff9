package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/kubectl-etcd/kubectl-etcd/internal/s3test"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/snapshottest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

func TestS3Prefix(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "", want: ""},
		{in: "/", want: ""},
		{in: "etcd", want: "etcd/"},
		{in: "etcd/", want: "etcd/"},
		{in: "/etcd/prod/", want: "etcd/prod/"},
		{in: "etcd.backups/v1", want: "etcd.backups/v1/"},
		{in: "etcd//prod", bad: true},
		{in: "etcd/../other", bad: true},
		{in: "..", bad: true},
		{in: "./etcd", bad: true},
		{in: "etcd/\n", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := S3Prefix(tc.in)
			if tc.bad {
				if err == nil {
					t.Errorf("S3Prefix(%q) = %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("S3Prefix(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestCheckObjectName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{FileName("nightly", time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)), true},
		{"keep-me.db", true},
		{"", false},
		{"../nightly.db.zst.age", false},
		{"..", false},
		{"a..b", false},
		{"sub/nightly.db", false},
		{"/nightly.db", false},
		{"nightly\x00.db", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkObjectName(tc.name); (err == nil) != tc.ok {
				t.Errorf("checkObjectName(%q) = %v, want ok %v", tc.name, err, tc.ok)
			}
		})
	}
}

func TestNewS3(t *testing.T) {
	good := S3Config{Endpoint: "http://127.0.0.1:9000", Bucket: "b", AccessKeyID: "id", SecretAccessKey: "very-secret"}
	for _, tc := range []struct {
		name    string
		edit    func(*S3Config)
		want    string // String(), or the error's words
		wantErr bool
	}{
		{"top of the bucket", func(*S3Config) {}, "s3://b/", false},
		{"prefix", func(c *S3Config) { c.Prefix = "/etcd/prod" }, "s3://b/etcd/prod/", false},
		{"AWS", func(c *S3Config) { c.Endpoint = "" }, "s3://b/", false},
		{"no bucket", func(c *S3Config) { c.Bucket = "" }, "bucket", true},
		{"no secret key", func(c *S3Config) { c.SecretAccessKey = "" }, "AWS_SECRET_ACCESS_KEY", true},
		{"credentials in the URL", func(c *S3Config) { c.Endpoint = "http://id:very-secret@127.0.0.1:9000" }, "without credentials", true},
		{"not a URL", func(c *S3Config) { c.Endpoint = "127.0.0.1:9000" }, "http:// or https://", true},
		{"CA bundle with no certificate", func(c *S3Config) { c.CABundle = []byte("nothing") }, "PEM", true},
		{"parts too small", func(c *S3Config) { c.PartSize = 1 << 20 }, "5 MiB", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			s, err := NewS3(c)
			switch {
			case tc.wantErr && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("NewS3: %v, want an error with %q", err, tc.want)
			case tc.wantErr && strings.Contains(err.Error(), "very-secret"):
				t.Errorf("the error shows the secret key: %v", err)
			case !tc.wantErr && err != nil:
				t.Errorf("NewS3: %v", err)
			case !tc.wantErr && s.String() != tc.want:
				t.Errorf("String() = %q, want %q", s.String(), tc.want)
			}
		})
	}
}

// testS3 is a destination at the server, with the root key.
func testS3(t *testing.T, srv *s3test.Server, bucket, prefix string, edit ...func(*S3Config)) *S3 {
	t.Helper()
	c := S3Config{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: prefix, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}
	for _, e := range edit {
		e(&c)
	}
	s, err := NewS3(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// write writes n pseudo-random bytes of seed to w, in odd-sized pieces
// that straddle the parts' edges, and returns them.
func write(t *testing.T, w io.Writer, n int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(data)
	for off := 0; off < n; {
		end := min(off+100_003, n)
		if _, err := w.Write(data[off:end]); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
		off = end
	}
	return data
}

// A snapshot goes up as parts while it streams, with at most two parts
// in memory, and is under its key, byte for byte, only after Commit.
func TestS3SinkIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts versitygw")
	}
	srv := s3test.Start(t, "backups")
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		size     int
		partSize int
		parts    int
	}{
		{"16 MiB parts", 40 << 20, 0, 3},
		{"5 MiB parts", 40 << 20, 5 << 20, 8},
		{"smaller than a part", 1000, 0, 1},
		{"exactly one part", 5 << 20, 5 << 20, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testS3(t, srv, "backups", "etcd", func(c *S3Config) { c.PartSize = tc.partSize })
			name := strings.ReplaceAll(tc.name, " ", "-") + Ext
			sink, err := s.Sink(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			w, err := sink.Begin()
			if err != nil {
				t.Fatal(err)
			}
			data := write(t, w, tc.size, 1)
			runtime.ReadMemStats(&after)
			// data itself was allocated in there too.
			if grew, bound := after.TotalAlloc-before.TotalAlloc-uint64(tc.size), uint64(2*s.partSize+4<<20); grew > bound {
				t.Errorf("writing %d bytes allocated %d bytes beside them, want at most two parts (%d) and a little", tc.size, grew, bound)
			}
			if _, err := srv.Get(t, "backups", "etcd/"+name); !errors.Is(err, s3test.ErrNoObject) {
				t.Errorf("before Commit, the key holds something: %v", err)
			}
			if err := sink.Commit(); err != nil {
				t.Fatal(err)
			}
			got, err := srv.Get(t, "backups", "etcd/"+name)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read back %d bytes, %v; want the %d written", len(got), err, len(data))
			}
			if u := srv.Uploads(t, "backups"); len(u) != 0 {
				t.Errorf("uploads left in progress: %v", u)
			}
			// S3's ETag of a multipart object ends in its number of parts.
			h, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("backups"), Key: aws.String("etcd/" + name)})
			if err != nil {
				t.Fatal(err)
			}
			if etag := aws.ToString(h.ETag); !strings.HasSuffix(etag, fmt.Sprintf(`-%d"`, tc.parts)) {
				t.Errorf("ETag %s, want one of %d parts", etag, tc.parts)
			}
		})
	}

	t.Run("abort", func(t *testing.T) {
		s := testS3(t, srv, "backups", "etcd", func(c *S3Config) { c.PartSize = 5 << 20 })
		sink, err := s.Sink(ctx, "aborted"+Ext)
		if err != nil {
			t.Fatal(err)
		}
		w, err := sink.Begin()
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, 12<<20, 2)
		sink.Abort()
		if _, err := srv.Get(t, "backups", "etcd/aborted"+Ext); !errors.Is(err, s3test.ErrNoObject) {
			t.Errorf("after Abort, the key holds something: %v", err)
		}
		if u := srv.Uploads(t, "backups"); len(u) != 0 {
			t.Errorf("after Abort, uploads in progress: %v", u)
		}
	})

	t.Run("retry", func(t *testing.T) {
		s := testS3(t, srv, "backups", "retry", func(c *S3Config) { c.PartSize = 5 << 20 })
		sink, err := s.Sink(ctx, "retried"+Ext)
		if err != nil {
			t.Fatal(err)
		}
		w, err := sink.Begin()
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, 7<<20, 3)
		if w, err = sink.Begin(); err != nil {
			t.Fatal(err)
		}
		data := write(t, w, 6<<20, 4)
		if err := sink.Commit(); err != nil {
			t.Fatal(err)
		}
		got, err := srv.Get(t, "backups", "retry/retried"+Ext)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("read back %d bytes, %v; want the second attempt's %d", len(got), err, len(data))
		}
		objs, err := s.List(ctx)
		if err != nil || len(objs) != 1 || objs[0].Name != "retried"+Ext || objs[0].Size != int64(len(data)) {
			t.Errorf("List = %+v, %v; want the one object", objs, err)
		}
		if u := srv.Uploads(t, "backups"); len(u) != 0 {
			t.Errorf("uploads left in progress: %v", u)
		}
	})

	t.Run("never overwrites", func(t *testing.T) {
		s := testS3(t, srv, "backups", "taken")
		srv.Put(t, "backups", "taken/a"+Ext, []byte("someone's"))
		if _, err := s.Sink(ctx, "a"+Ext); err == nil || !strings.Contains(err.Error(), "s3://backups/taken/a"+Ext+" already exists") {
			t.Errorf("Sink on an existing key: %v", err)
		}
		// One that appears while the snapshot streams.
		sink, err := s.Sink(ctx, "b"+Ext)
		if err != nil {
			t.Fatal(err)
		}
		w, err := sink.Begin()
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, 1000, 5)
		srv.Put(t, "backups", "taken/b"+Ext, []byte("someone's"))
		if err := sink.Commit(); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("Commit over a key taken meanwhile: %v", err)
		}
		sink.Abort()
		if got, err := srv.Get(t, "backups", "taken/b"+Ext); err != nil || string(got) != "someone's" {
			t.Errorf("the other writer's object: %q, %v", got, err)
		}
		if u := srv.Uploads(t, "backups"); len(u) != 0 {
			t.Errorf("uploads left in progress: %v", u)
		}
	})
}

// List sees the objects right under the prefix, page after page, and
// Remove removes one of them, and nothing outside the prefix.
func TestS3ListRemoveIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts versitygw")
	}
	srv := s3test.Start(t, "backups")
	ctx := context.Background()
	for key, size := range map[string]int{
		"etcd/prod/a.db": 3, "etcd/prod/b.db": 4, "etcd/prod/c.db": 5, "etcd/prod/d.db": 6,
		"etcd/prod/deeper/e.db": 7, "etcd/prod-other.db": 8, "etcd/other/f.db": 9, "top.db": 10,
	} {
		srv.Put(t, "backups", key, bytes.Repeat([]byte("x"), size))
	}
	s := testS3(t, srv, "backups", "etcd/prod/")
	s.pageSize = 2
	objs, err := s.List(ctx)
	want := []Object{{Name: "a.db", Size: 3}, {Name: "b.db", Size: 4}, {Name: "c.db", Size: 5}, {Name: "d.db", Size: 6}}
	if err != nil || !slices.Equal(unstamped(objs), want) {
		t.Fatalf("List = %+v, %v; want %+v", objs, err, want)
	}
	if err := s.Remove(ctx, "b.db"); err != nil {
		t.Fatal(err)
	}
	objs, err = s.List(ctx)
	if want := []Object{{Name: "a.db", Size: 3}, {Name: "c.db", Size: 5}, {Name: "d.db", Size: 6}}; err != nil || !slices.Equal(unstamped(objs), want) {
		t.Errorf("after Remove, List = %+v, %v; want %+v", objs, err, want)
	}
	for _, name := range []string{"../prod-other.db", "deeper/e.db", ".."} {
		if err := s.Remove(ctx, name); err == nil {
			t.Errorf("Remove(%q) reached outside the prefix", name)
		}
	}
	for _, key := range []string{"etcd/prod/deeper/e.db", "etcd/prod-other.db", "etcd/other/f.db", "top.db"} {
		if _, err := srv.Get(t, "backups", key); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	top := testS3(t, srv, "backups", "")
	if objs, err := top.List(ctx); err != nil || !slices.Equal(unstamped(objs), []Object{{Name: "top.db", Size: 10}}) {
		t.Errorf("the bucket's top: %+v, %v", objs, err)
	}
}

// unstamped is objs without the times the storage says they were
// written.
func unstamped(objs []Object) []Object {
	out := make([]Object, len(objs))
	for i, o := range objs {
		o.Modified = time.Time{}
		out[i] = o
	}
	return out
}

// What goes wrong is said with the endpoint and bucket and what to
// check, and never with the secret key.
func TestS3ErrorsIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts versitygw")
	}
	srv := s3test.Start(t, "backups")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(*S3Config)
		want []string
	}{
		{"wrong secret key", func(c *S3Config) { c.SecretAccessKey = "wrong-" + c.SecretAccessKey },
			[]string{srv.Endpoint, "signature", "AWS_SECRET_ACCESS_KEY"}},
		{"unknown access key", func(c *S3Config) { c.AccessKeyID = "nobody" },
			[]string{srv.Endpoint, "does not know the access key", "AWS_ACCESS_KEY_ID"}},
		{"no such bucket", func(c *S3Config) { c.Bucket = "nope" },
			[]string{srv.Endpoint, `bucket "nope" does not exist`, "create it"}},
		{"endpoint does not answer", func(c *S3Config) { c.Endpoint = "http://127.0.0.1:1" },
			[]string{"http://127.0.0.1:1 does not answer", "connection refused", "reachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testS3(t, srv, "backups", "etcd", tc.edit)
			_, sinkErr := s.Sink(ctx, "a"+Ext)
			_, listErr := s.List(ctx)
			for what, err := range map[string]error{"Sink": sinkErr, "List": listErr} {
				if err == nil {
					t.Errorf("%s: no error", what)
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %v\nwant it to say %q", what, err, w)
					}
				}
				if strings.Contains(err.Error(), srv.SecretKey) {
					t.Errorf("%s: the error shows the secret key: %v", what, err)
				}
			}
		})
	}
}

// A scheduled run to S3: the kept object is a verified snapshot, and
// the retention removed only the schedule's older ones under the prefix.
func TestRunOnceS3Integration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts versitygw")
	}
	srv := s3test.Start(t, "backups")
	ctx := context.Background()
	plain := filepath.Join(t.TempDir(), "snap.db")
	snapshottest.Write(t, plain, snapshottest.Snapshot{Ops: []snapshottest.Op{snapshottest.Put("/registry/configmaps/default/a", 100)}})
	snap, _ := os.ReadFile(plain)
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z)
	zw.Write(snap)
	zw.Close()
	id, _ := age.GenerateX25519Identity()

	clock := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	older := func(days int) string { return FileName("nightly", clock.Add(-time.Duration(days)*24*time.Hour)) }
	for _, key := range []string{"etcd/" + older(1), "etcd/" + older(2), "etcd/" + older(3),
		"etcd/" + FileName("weekly", clock.Add(-30*24*time.Hour)), "etcd/keep-me.db", "etcd/old/" + older(9), older(8)} {
		srv.Put(t, "backups", key, []byte("old"))
	}
	var log []string
	dest := testS3(t, srv, "backups", "etcd")
	out, err := RunOnce(ctx, Config{Name: "nightly", Keep: Rule{Count: 2}}, RunDeps{
		Snapshot: func(_ context.Context, w io.Writer) error { _, err := w.Write(z.Bytes()); return err },
		Encrypt:  snapshot.Encrypter([]age.Recipient{id.Recipient()}),
		Dest:     dest,
		Now:      func() time.Time { return clock },
		Log:      func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(log, "\n"))
	}
	if want := []string{older(2), older(3)}; !slices.Equal(out.Removed, want) {
		t.Errorf("removed %v, want %v", out.Removed, want)
	}
	kept, err := srv.Get(t, "backups", "etcd/"+out.File)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), out.File)
	os.WriteFile(file, kept, 0o600)
	if v, err := snapshot.Verify(file, []age.Identity{id}); err != nil || !v.Compressed || v.Size != int64(len(snap)) {
		t.Errorf("the kept object: %+v, %v", v, err)
	}
	objs, err := dest.List(ctx)
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	want := []string{"keep-me.db", older(1), out.File, FileName("weekly", clock.Add(-30*24*time.Hour))}
	if slices.Sort(want); err != nil || !slices.Equal(names, want) {
		t.Errorf("left %v, %v; want %v", names, err, want)
	}
	for _, key := range []string{"etcd/old/" + older(9), older(8)} {
		if _, err := srv.Get(t, "backups", key); err != nil {
			t.Errorf("outside the prefix, %s: %v", key, err)
		}
	}
}

// An https endpoint signed by a CA of its own is trusted with its CA
// bundle, and refused, saying so, without it.
func TestS3TLSIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts versitygw")
	}
	srv := s3test.StartTLS(t, "backups")
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		bundle  []byte
		wantErr []string
	}{
		{"with the CA bundle", srv.CA, nil},
		{"without", nil, []string{srv.Endpoint, "not trusted", "CA bundle"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testS3(t, srv, "backups", "tls", func(c *S3Config) { c.CABundle = tc.bundle })
			name := strings.ReplaceAll(tc.name, " ", "-") + Ext
			sink, err := s.Sink(ctx, name)
			if tc.wantErr != nil {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("Sink: %v\nwant it to say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w, err := sink.Begin()
			if err != nil {
				t.Fatal(err)
			}
			data := write(t, w, 1<<20, 6)
			if err := sink.Commit(); err != nil {
				t.Fatal(err)
			}
			if got, err := srv.Get(t, "backups", "tls/"+name); err != nil || !bytes.Equal(got, data) {
				t.Errorf("read back %d bytes, %v; want the %d written", len(got), err, len(data))
			}
		})
	}
}
