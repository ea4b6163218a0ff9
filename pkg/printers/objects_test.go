package printers

import (
	"bytes"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode/decodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
)

func TestObjectPrinter(t *testing.T) {
	cm, err := decode.EncodeProtobuf(decodetest.ConfigMap())
	if err != nil {
		t.Fatal(err)
	}
	values := []struct {
		key   string
		rev   int64
		value []byte
	}{
		{"/registry/configmaps/prod/app-config", 4242, cm},
		{"/registry/secrets/prod/db", 4243, []byte("k8s:enc:aescbc:v1:key1:\x01\x02\x03")},
		{"/registry/example.com/widgets/prod/w1", 0, []byte(decodetest.WidgetJSON)},
		{"compact_rev_key", 4000, []byte("3990")},
	}
	for _, format := range []string{YAML, JSON} {
		t.Run(format, func(t *testing.T) {
			var out, errOut bytes.Buffer
			p := &ObjectPrinter{Out: &out, ErrOut: &errOut, Format: format}
			for _, v := range values {
				if err := p.Print(v.key, v.rev, decode.Decode(v.value)); err != nil {
					t.Fatal(err)
				}
			}
			golden.Assert(t, "objects-"+format, out.Bytes())
			golden.Assert(t, "objects-"+format+"-stderr", errOut.Bytes())
		})
	}
}
