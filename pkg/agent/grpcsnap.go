package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// etcd's Maintenance.Snapshot, spoken on the wire as gRPC is (HTTP/2, a
// length-prefixed protobuf message per chunk, the status in trailers),
// with the standard library's HTTP/2 client and protowire: the agent stays
// small (DESIGN: standard library and YAML), and the stream is as fast as
// etcd's own client's. etcd's JSON gateway, which the agent's other calls
// use, streams a snapshot four times slower (base64 in JSON).

// snapshotMethod is the gRPC method's path.
const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

// maxSnapshotMessage bounds one message: etcd sends 32 KiB chunks.
const maxSnapshotMessage = 16 << 20

// grpcSnapshot opens the snapshot stream of the member at endpoint.
func grpcSnapshot(ctx context.Context, client *http.Client, endpoint string) (*snapshotReader, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("client URL %q is not a URL such as https://127.0.0.1:2379", endpoint)
	}
	u.Path = snapshotMethod
	// An empty SnapshotRequest: no compression, no length.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(make([]byte, 5)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		resp.Body.Close()
		return nil, fmt.Errorf("etcd answered %s over HTTP/%d.%d, not a gRPC stream", resp.Status, resp.ProtoMajor, resp.ProtoMinor)
	}
	// A call refused at once has its status in the headers.
	if err := grpcStatus(resp.Header); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return &snapshotReader{resp: resp, br: bufio.NewReaderSize(resp.Body, 256<<10)}, nil
}

// snapshotReader yields the snapshot's bytes: each message's blob.
type snapshotReader struct {
	resp    *http.Response
	br      *bufio.Reader
	msg     []byte
	blob    []byte
	version string
	err     error
}

func (r *snapshotReader) Read(p []byte) (int, error) {
	for len(r.blob) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	n := copy(p, r.blob)
	r.blob = r.blob[n:]
	return n, nil
}

// next reads one message into blob; io.EOF once the call ended well.
func (r *snapshotReader) next() error {
	var head [5]byte
	if _, err := io.ReadFull(r.br, head[:]); err != nil {
		if err == io.EOF {
			// The body is done: the trailers say how the call ended.
			if serr := grpcStatus(r.resp.Trailer); serr != nil {
				return serr
			}
			if r.resp.Trailer.Get("Grpc-Status") == "" {
				return errors.New("the snapshot stream ended without a gRPC status: cut short")
			}
			return io.EOF
		}
		return fmt.Errorf("the snapshot stream: %w", err)
	}
	if head[0] != 0 {
		return errors.New("etcd sent a compressed gRPC message, which was not asked for")
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > maxSnapshotMessage {
		return fmt.Errorf("etcd sent a snapshot message of %d bytes, more than %d", n, maxSnapshotMessage)
	}
	if cap(r.msg) < int(n) {
		r.msg = make([]byte, n)
	}
	r.msg = r.msg[:n]
	if _, err := io.ReadFull(r.br, r.msg); err != nil {
		return fmt.Errorf("the snapshot stream, in a message: %w", err)
	}
	b := r.msg
	for len(b) > 0 {
		num, typ, m := protowire.ConsumeTag(b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
		switch {
		case num == 3 && typ == protowire.BytesType: // blob
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			r.blob, b = v, b[m:]
		case num == 4 && typ == protowire.BytesType: // version (3.6+)
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			r.version, b = string(v), b[m:]
		default: // header, remaining_bytes
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			b = b[m:]
		}
	}
	return nil
}

// Close ends the call.
func (r *snapshotReader) Close() error { return r.resp.Body.Close() }

// grpcStatus is the call's error from its status fields, nil for OK or
// none.
func grpcStatus(h http.Header) error {
	code := h.Get("Grpc-Status")
	if code == "" || code == "0" {
		return nil
	}
	msg, _ := url.PathUnescape(h.Get("Grpc-Message"))
	if msg == "" {
		msg = "no message"
	}
	return fmt.Errorf("etcd refused the snapshot (gRPC status %s): %s", code, strings.TrimSpace(msg))
}
