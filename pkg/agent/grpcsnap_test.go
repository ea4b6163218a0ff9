package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// frame is one gRPC message holding a SnapshotResponse.
func frame(blob []byte, version string) []byte {
	var msg []byte
	msg = protowire.AppendTag(msg, 2, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 7)
	msg = protowire.AppendTag(msg, 3, protowire.BytesType)
	msg = protowire.AppendBytes(msg, blob)
	if version != "" {
		msg = protowire.AppendTag(msg, 4, protowire.BytesType)
		msg = protowire.AppendString(msg, version)
	}
	head := make([]byte, 5)
	binary.BigEndian.PutUint32(head[1:], uint32(len(msg)))
	return append(head, msg...)
}

// The snapshot's bytes are the blobs, in order, with the version; how the
// call ended is read from its status, and a stream cut short or refused
// is an error that says so.
func TestGRPCSnapshot(t *testing.T) {
	for _, tt := range []struct {
		name       string
		serve      func(w http.ResponseWriter)
		want, fail string
	}{
		{name: "two chunks", want: "hello world", serve: func(w http.ResponseWriter) {
			w.Header().Set("Trailer", "Grpc-Status")
			w.Write(frame([]byte("hello "), ""))
			w.Write(frame([]byte("world"), "3.6.0"))
			w.Header().Set("Grpc-Status", "0")
		}},
		{name: "refused at once", fail: "gRPC status 7: permission denied", serve: func(w http.ResponseWriter) {
			w.Header().Set("Grpc-Status", "7")
			w.Header().Set("Grpc-Message", "permission%20denied")
		}},
		{name: "failed midway", fail: "gRPC status 13", serve: func(w http.ResponseWriter) {
			w.Header().Set("Trailer", "Grpc-Status")
			w.Write(frame([]byte("hello "), ""))
			w.Header().Set("Grpc-Status", "13")
		}},
		{name: "cut short", fail: "without a gRPC status", serve: func(w http.ResponseWriter) {
			w.Write(frame([]byte("hello "), ""))
		}},
		{name: "a torn message", fail: "in a message", serve: func(w http.ResponseWriter) {
			w.Header().Set("Trailer", "Grpc-Status")
			f := frame([]byte("hello "), "")
			w.Write(f[:len(f)-2])
			w.Header().Set("Grpc-Status", "0")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != snapshotMethod || r.Header.Get("Content-Type") != "application/grpc" || r.ProtoMajor != 2 {
					http.Error(w, "not gRPC", http.StatusBadRequest)
					return
				}
				tt.serve(w)
			}))
			srv.EnableHTTP2 = true
			srv.StartTLS()
			defer srv.Close()
			r, err := grpcSnapshot(context.Background(), srv.Client(), srv.URL)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(r)
				r.Close()
			}
			if tt.fail != "" {
				if err == nil || !strings.Contains(err.Error(), tt.fail) {
					t.Errorf("got %q, %v; want an error naming %q", got, err, tt.fail)
				}
				return
			}
			if err != nil || string(got) != tt.want || r.version != "3.6.0" {
				t.Errorf("got %q (version %q), %v; want %q", got, r.version, err, tt.want)
			}
		})
	}
}

// A member that cannot answer now (unavailable, no leader) sends the call
// to the next endpoint; a refusal is etcd's answer, and final.
func TestGRPCAnyEndpoint(t *testing.T) {
	serve := func(status, msg string, calls *int) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*calls++
			w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
			if status == "0" {
				var m []byte
				m = protowire.AppendTag(m, 2, protowire.BytesType)
				m = protowire.AppendBytes(m, protowire.AppendString(protowire.AppendTag(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 42), 2, protowire.BytesType), "cp1"))
				head := make([]byte, 5)
				binary.BigEndian.PutUint32(head[1:], uint32(len(m)))
				w.Write(append(head, m...))
			}
			w.Header().Set("Grpc-Status", status)
			w.Header().Set("Grpc-Message", msg)
		}))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	var a, b, c, d int
	down, refusing, good := serve("14", "connection refused", &a), serve("9", "etcdserver: member not found", &b), serve("0", "", &c)
	leaderless := serve("2", "etcdserver: no leader", &d)
	g := &GRPC{Endpoints: []string{down.URL, leaderless.URL, good.URL}, Client: good.Client()}
	ms, err := g.List(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != 42 || ms[0].Name != "cp1" || a != 1 || d != 1 || c != 1 {
		t.Errorf("list past an unavailable and a leaderless member: %+v, %v (calls %d %d %d)", ms, err, a, d, c)
	}
	g.Endpoints = []string{refusing.URL, good.URL}
	if err := g.Remove(context.Background(), 42); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "member not found") || c != 1 {
		t.Errorf("a refusal: %v (the next endpoint asked %d times)", err, c-1)
	}
}
