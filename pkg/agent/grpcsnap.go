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

// etcd's gRPC API spoken on the wire (HTTP/2, length-prefixed protobuf
// messages, the status in trailers) with the standard library's HTTP/2
// client and protowire: the agent stays small (DESIGN: standard library
// and YAML; etcd's client would double it), a snapshot streams as fast as
// with etcd's client, and nothing needs etcd's optional JSON gateway,
// which streamed a snapshot four times slower (base64 in JSON).

// snapshotMethod is the gRPC method's path.
const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

// maxMessage bounds one message: etcd sends 32 KiB snapshot chunks, and
// member lists of a few KiB.
const maxMessage = 16 << 20

// grpcSnapshot opens the snapshot stream of the member at endpoint.
func grpcSnapshot(ctx context.Context, client *http.Client, endpoint string) (*snapshotReader, error) {
	resp, err := grpcCall(ctx, client, endpoint, snapshotMethod, nil)
	if err != nil {
		return nil, err
	}
	return &snapshotReader{resp: resp, br: bufio.NewReaderSize(resp.Body, 256<<10)}, nil
}

// grpcCall sends one request message (req, protobuf) to method at
// endpoint and returns the response whose body holds the answer's
// messages, its status checked where a call refused at once carries it.
func grpcCall(ctx context.Context, client *http.Client, endpoint, method string, req []byte) (*http.Response, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("client URL %q is not a URL such as https://127.0.0.1:2379", endpoint)
	}
	u.Path = method
	body := make([]byte, 5, 5+len(req))
	binary.BigEndian.PutUint32(body[1:], uint32(len(req)))
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(append(body, req...)))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/grpc")
	r.Header.Set("TE", "trailers")
	resp, err := client.Do(r)
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
	return resp, nil
}

// readMessage reads the next message of a gRPC body into buf (grown as
// needed); io.EOF at the body's clean end.
func readMessage(br *bufio.Reader, buf []byte) ([]byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return buf, err
	}
	if head[0] != 0 {
		return buf, errors.New("etcd sent a compressed gRPC message, which was not asked for")
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > maxMessage {
		return buf, fmt.Errorf("etcd sent a message of %d bytes, more than %d", n, maxMessage)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return buf, fmt.Errorf("in a message: %w", io.ErrUnexpectedEOF)
	}
	return buf, nil
}

// callEnded is how a call whose body is done ended, from its trailers.
func callEnded(resp *http.Response) error {
	if err := grpcStatus(resp.Trailer); err != nil {
		return err
	}
	if resp.Trailer.Get("Grpc-Status") == "" {
		return errors.New("the answer ended without a gRPC status: cut short")
	}
	return nil
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
	var err error
	r.msg, err = readMessage(r.br, r.msg)
	if err == io.EOF {
		// The body is done: the trailers say how the call ended.
		if err := callEnded(r.resp); err != nil {
			return fmt.Errorf("the snapshot stream: %w", err)
		}
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("the snapshot stream: %w", err)
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

// statusError is a call's gRPC status other than OK.
type statusError struct{ code, msg string }

func (e *statusError) Error() string {
	return fmt.Sprintf("etcd answered gRPC status %s: %s", e.code, e.msg)
}

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
	return &statusError{code: code, msg: strings.TrimSpace(msg)}
}
