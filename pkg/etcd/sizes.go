package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// rangeMethod is etcd's Range RPC.
const rangeMethod = "/etcdserverpb.KV/Range"

// getSizes reads a page whose values are measured, not kept: etcd has no
// range that returns a value's size without the value, so the values
// cross the wire, but decoding them into a RangeResponse would copy each
// one into a fresh slice, the bulk of a page's memory and a fifth of the
// client's CPU on a walk through 200k objects. sizesCodec reads the wire
// format in place and keeps the keys (in one slice per page) and the
// lengths.
func (c *V3Conn) getSizes(ctx context.Context, r PageRequest) (*Page, error) {
	req := &pb.RangeRequest{Key: []byte(r.Key), Limit: r.Limit, Revision: r.Revision, Serializable: r.Serializable}
	if r.End != "" {
		req.RangeEnd = []byte(r.End)
	}
	p := &Page{}
	// The same call options as client/v3's own range: wait for the
	// connection, and no 4 MiB cap on a page of large values.
	err := c.Client.ActiveConnection().Invoke(ctx, rangeMethod, req, p,
		grpc.ForceCodecV2(sizesCodec{}), grpc.WaitForReady(true), grpc.MaxCallRecvMsgSize(math.MaxInt32))
	if err != nil {
		return nil, err
	}
	if r.Revision != 0 {
		p.Revision = r.Revision
	}
	return p, nil
}

// sizesCodec marshals a RangeRequest and unmarshals a RangeResponse into
// a Page without its values. Its name keeps gRPC's content subtype.
type sizesCodec struct{}

func (sizesCodec) Name() string { return "proto" }

func (sizesCodec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*pb.RangeRequest)
	if !ok {
		return nil, fmt.Errorf("sizes codec: cannot marshal a %T", v)
	}
	b, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (sizesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*Page)
	if !ok {
		return fmt.Errorf("sizes codec: cannot unmarshal into a %T", v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decodeSizes(buf.ReadOnlyData(), p)
}

// RangeResponse, KeyValue and ResponseHeader field numbers
// (api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto).
const (
	rangeHeader, rangeKVs, rangeMore, rangeCount = 1, 2, 3, 4
	headerRevision                               = 3
	kvKey, kvCreate, kvMod, kvVersion            = 1, 2, 3, 4
	kvValue, kvLease                             = 5, 6
)

var errTruncated = errors.New("sizes codec: truncated range response")

// decodeSizes fills p from a RangeResponse's wire format: the header's
// revision, More, Count, and each key without its value. The keys are
// copied into one slice, since b is freed after.
func decodeSizes(b []byte, p *Page) error {
	var kvs [][]byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch {
		case num == rangeHeader && typ == protowire.BytesType:
			return fields(sub, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				if num == headerRevision && typ == protowire.VarintType {
					p.Revision = int64(v)
				}
				return nil
			})
		case num == rangeKVs && typ == protowire.BytesType:
			kvs = append(kvs, sub)
		case num == rangeMore && typ == protowire.VarintType:
			p.More = v != 0
		case num == rangeCount && typ == protowire.VarintType:
			p.Count = int64(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var arena []byte
	p.KVs = make([]KeyValue, len(kvs))
	for i, sub := range kvs {
		if arena, err = decodeKV(sub, &p.KVs[i], arena); err != nil {
			return err
		}
	}
	return nil
}

// decodeKV fills kv from a KeyValue's wire format, its value measured
// and its key appended to arena, which grows in chunks of 64 KiB so that
// a page's keys cost a few allocations, not one each.
func decodeKV(b []byte, kv *KeyValue, arena []byte) ([]byte, error) {
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		if typ == protowire.BytesType {
			switch num {
			case kvKey:
				if len(arena)+len(sub) > cap(arena) {
					arena = make([]byte, 0, max(len(sub), 64<<10))
				}
				start := len(arena)
				arena = append(arena, sub...)
				kv.Key = arena[start:len(arena):len(arena)]
			case kvValue:
				kv.ValueSize = int64(len(sub))
			}
			return nil
		}
		if typ != protowire.VarintType {
			return nil
		}
		switch num {
		case kvCreate:
			kv.CreateRevision = int64(v)
		case kvMod:
			kv.ModRevision = int64(v)
		case kvVersion:
			kv.Version = int64(v)
		case kvLease:
			kv.Lease = int64(v)
		}
		return nil
	})
	return arena, err
}

// fields calls fn with each field of a message: a varint's value, or a
// length-delimited field's bytes. It skips other wire types.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		var v uint64
		var sub []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			sub, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if err := fn(num, typ, v, sub); err != nil {
			return err
		}
	}
	return nil
}
