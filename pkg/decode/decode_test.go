package decode_test

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode/decodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/internal/golden"
)

func mustProto(t *testing.T, obj runtime.Object) []byte {
	t.Helper()
	b, err := decode.EncodeProtobuf(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withUnknownField is a ConfigMap as a newer API server might store it:
// with a field (99) this client-go does not know.
func withUnknownField(t *testing.T) []byte {
	t.Helper()
	raw, err := decodetest.ConfigMap().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	raw = protowire.AppendVarint(protowire.AppendTag(raw, 99, protowire.VarintType), 7)
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, Raw: raw}
	b, err := unk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte("k8s\x00"), b...)
}

func cborValue(t *testing.T) []byte {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": "prod"},
		"spec":     map[string]any{"size": int64(3)},
	}}
	var buf bytes.Buffer
	if err := cbor.NewSerializer(scheme.Scheme, scheme.Scheme).Encode(u, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value func(t *testing.T) []byte
		want  decode.Encoding
		obj   bool
	}{
		{"configmap", func(t *testing.T) []byte { return mustProto(t, decodetest.ConfigMap()) }, decode.Protobuf, true},
		{"pod", func(t *testing.T) []byte { return mustProto(t, decodetest.Pod()) }, decode.Protobuf, true},
		{"secret", func(t *testing.T) []byte { return mustProto(t, decodetest.Secret()) }, decode.Protobuf, true},
		{"custom-resource-json", func(*testing.T) []byte { return []byte(decodetest.WidgetJSON) }, decode.JSON, true},
		{"configmap-json", func(*testing.T) []byte {
			return []byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"legacy","namespace":"default"},"data":{"k":"v"}}`)
		}, decode.JSON, true},
		{"custom-resource-cbor", cborValue, decode.CBOR, true},
		{"encrypted-aescbc", func(*testing.T) []byte { return []byte("k8s:enc:aescbc:v1:key1:\x8f\x01\x02ciphertext:\x00") }, decode.Encrypted, false},
		{"encrypted-kms-v2", func(*testing.T) []byte { return []byte("k8s:enc:kms:v2:vault-kms:\n\x12\xff") }, decode.Encrypted, false},
		{"encrypted-garbled-prefix", func(*testing.T) []byte { return []byte("k8s:enc:\x00\x01") }, decode.Encrypted, false},
		{"unknown-protobuf-kind", func(*testing.T) []byte { return decodetest.UnknownProtobuf("Widget") }, decode.Protobuf, true},
		{"unknown-fields", withUnknownField, decode.Protobuf, true},
		{"corrupt-protobuf", func(*testing.T) []byte { return []byte("k8s\x00\x0a\xff\xff") }, decode.Protobuf, false},
		{"text", func(*testing.T) []byte { return []byte("12345") }, decode.Text, false},
		{"binary", func(*testing.T) []byte { return []byte{0x00, 0xff, 0xfe} }, decode.Binary, false},
		{"empty", func(*testing.T) []byte { return nil }, decode.Empty, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := decode.Decode(tc.value(t))
			if v.Encoding != tc.want || v.IsObject() != tc.obj {
				t.Fatalf("encoding %s, object %v; want %s, %v (note %q)", v.Encoding, v.IsObject(), tc.want, tc.obj, v.Note)
			}
			var out bytes.Buffer
			fmt.Fprintf(&out, "encoding: %s\nkind: %s\nnote: %s\n", v.Encoding, v.GVK, v.Note)
			if v.Encryption != nil {
				fmt.Fprintf(&out, "encryption: %+v\n", *v.Encryption)
			}
			if v.IsObject() {
				y, err := v.YAML()
				if err != nil {
					t.Fatal(err)
				}
				j, err := v.IndentedJSON()
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&out, "--- yaml\n%s--- json\n%s", y, j)
			}
			golden.Assert(t, "decode-"+tc.name, out.Bytes())
		})
	}
}

func TestDecodeTyped(t *testing.T) {
	v := decode.Decode(mustProto(t, decodetest.Secret()))
	s, ok := v.Object.(*corev1.Secret)
	if !ok {
		t.Fatalf("got %T, want a typed *v1.Secret", v.Object)
	}
	if string(s.Data["password"]) != "hunter2" {
		t.Errorf("password %q", s.Data["password"])
	}
	p, ok := decode.Decode(decodetest.UnknownProtobuf("Widget")).Object.(*metav1.PartialObjectMetadata)
	if !ok || p.Name != "app-config" || p.Kind != "Widget" {
		t.Errorf("unknown kind: got %#v", p)
	}
}
