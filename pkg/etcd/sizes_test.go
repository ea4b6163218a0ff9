package etcd

import (
	"bytes"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestDecodeSizes(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 70<<10) // keys past one arena chunk
	for _, c := range []struct {
		name string
		resp pb.RangeResponse
	}{
		{name: "empty", resp: pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 7}}},
		{name: "keys and sizes", resp: pb.RangeResponse{Header: &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 42, RaftTerm: 3},
			More: true, Count: 1000, Kvs: []*mvccpb.KeyValue{
				{Key: []byte("/registry/pods/default/a"), Value: []byte("xyz"), CreateRevision: 5, ModRevision: 9, Version: 3, Lease: 0x1234},
				{Key: []byte("/registry/pods/default/b"), CreateRevision: 6, ModRevision: 6, Version: 1},
				{Key: big, Value: big, CreateRevision: 8, ModRevision: 8, Version: 1},
			}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.resp.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var p Page
			if err := decodeSizes(b, &p); err != nil {
				t.Fatal(err)
			}
			if p.Revision != c.resp.Header.Revision || p.More != c.resp.More || p.Count != c.resp.Count || len(p.KVs) != len(c.resp.Kvs) {
				t.Fatalf("page %+v", p)
			}
			for i, want := range c.resp.Kvs {
				got := p.KVs[i]
				if !bytes.Equal(got.Key, want.Key) || got.Value != nil || got.ValueSize != int64(len(want.Value)) ||
					got.CreateRevision != want.CreateRevision || got.ModRevision != want.ModRevision ||
					got.Version != want.Version || got.Lease != want.Lease {
					t.Errorf("kv %d: %+v, want %+v", i, got, want)
				}
			}
			clear(b) // the buffer is freed after decoding: keys must not alias it
			for i, want := range c.resp.Kvs {
				if !bytes.Equal(p.KVs[i].Key, want.Key) {
					t.Errorf("kv %d aliases the buffer", i)
				}
			}
		})
	}
	for _, bad := range [][]byte{{0x12, 0x05, 0x0a}, {0x80}} {
		if err := decodeSizes(bad, &Page{}); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}
