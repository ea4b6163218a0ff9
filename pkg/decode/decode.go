// Package decode turns the values the Kubernetes API server stores in
// etcd back into objects, with apimachinery's own serializers and
// client-go's scheme: protobuf behind the "k8s\x00" magic (the API
// server's default storage encoding), JSON (custom resources, and
// clusters set to store JSON) and CBOR. It never fails: a value it cannot
// show whole becomes a Value that says what it is and why, so that a
// secret encrypted at rest is reported, never printed as garbage.
package decode

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// Encoding is how a value is stored.
type Encoding string

// The encodings Decode tells apart.
const (
	Protobuf  Encoding = "protobuf"
	JSON      Encoding = "json"
	CBOR      Encoding = "cbor"
	Encrypted Encoding = "encrypted"
	Text      Encoding = "text"
	Binary    Encoding = "binary"
	Empty     Encoding = "empty"
)

// Value is one decoded etcd value.
type Value struct {
	Encoding Encoding
	// GVK is the stored object's type, when the value is an object.
	GVK schema.GroupVersionKind
	// Object is the object: typed when the scheme knows its kind,
	// *unstructured.Unstructured for JSON or CBOR of a kind it does not,
	// *metav1.PartialObjectMetadata (type and metadata only) for
	// protobuf of a kind it does not, nil when the value is no object.
	Object runtime.Object
	// JSON is the value as stored when it is JSON of a kind the scheme
	// does not know: printed as is, in its own field order.
	JSON []byte
	// Encryption is set for values encrypted at rest.
	Encryption *Encryption
	// Note says what is not shown, and why; "" when the value is whole.
	Note string
}

// Encryption is what the prefix of a value encrypted at rest says:
// k8s:enc:<provider>:<version>:<key name>:<ciphertext>.
type Encryption struct {
	Provider string `json:"provider"`
	Version  string `json:"version"`
	KeyName  string `json:"keyName"`
}

var (
	protoMagic = []byte("k8s\x00")
	encMagic   = []byte("k8s:enc:")
	cborMagic  = []byte{0xd9, 0xd9, 0xf7}

	protoSerializer = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	jsonSerializer  = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{})
	cborSerializer  = cbor.NewSerializer(scheme.Scheme, scheme.Scheme)
)

// Decode decodes one value of a /registry key.
func Decode(value []byte) *Value {
	v := &Value{}
	switch {
	case len(value) == 0:
		v.Encoding, v.Note = Empty, "the value is empty"
	case bytes.HasPrefix(value, encMagic):
		v.Encoding, v.Encryption = Encrypted, parseEncryption(value)
		v.Note = v.Encryption.describe(len(value))
	case bytes.HasPrefix(value, protoMagic):
		v.Encoding = Protobuf
		decodeProtobuf(value, v)
	case bytes.HasPrefix(value, cborMagic):
		v.Encoding = CBOR
		decodeCBOR(value, v)
	case looksJSON(value):
		v.Encoding = JSON
		decodeJSON(value, v)
	case utf8.Valid(value):
		v.Encoding, v.Note = Text, "not a Kubernetes object; the value is the text "+quote(value)
	default:
		v.Encoding, v.Note = Binary, fmt.Sprintf("not a Kubernetes object: %d bytes of binary data; --raw prints them", len(value))
	}
	return v
}

// IsObject reports whether v holds an object to print.
func (v *Value) IsObject() bool { return v.Object != nil || v.JSON != nil }

func decodeProtobuf(value []byte, v *Value) {
	var unk runtime.Unknown
	if err := unk.Unmarshal(value[len(protoMagic):]); err != nil {
		v.Note = fmt.Sprintf("corrupt protobuf (%v); --raw prints the bytes", err)
		return
	}
	v.GVK = unk.GroupVersionKind()
	if !scheme.Scheme.Recognizes(v.GVK) {
		v.Object = partialObject(v.GVK, unk.Raw)
		v.Note = fmt.Sprintf("%s is a kind this build of kubectl-etcd does not know: only its type and metadata are shown; --raw prints the bytes", gvkString(v.GVK))
		return
	}
	obj, _, err := protoSerializer.Decode(value, nil, nil)
	if err != nil {
		v.Object = partialObject(v.GVK, unk.Raw)
		v.Note = fmt.Sprintf("decoding %s: %v; only its type and metadata are shown", gvkString(v.GVK), err)
		return
	}
	v.Object = obj
	// Protobuf skips the fields it does not know: a value written by a
	// newer API server than this build's client-go can hold some. They
	// show as a size that does not add up.
	if s, ok := obj.(interface{ Size() int }); ok && s.Size() != len(unk.Raw) {
		v.Note = fmt.Sprintf("the value holds fields this build of kubectl-etcd does not know (%d of %d bytes decoded): they are not shown; --raw prints the bytes", s.Size(), len(unk.Raw))
	}
}

// partialObject is the type and, when it can be read, the metadata of
// a protobuf object of an unknown kind: every Kubernetes object keeps
// its ObjectMeta in field 1.
func partialObject(gvk schema.GroupVersionKind, raw []byte) *metav1.PartialObjectMetadata {
	p := &metav1.PartialObjectMetadata{}
	p.SetGroupVersionKind(gvk)
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			break
		}
		raw = raw[n:]
		if num == 1 && typ == protowire.BytesType {
			b, m := protowire.ConsumeBytes(raw)
			var meta metav1.ObjectMeta
			if m >= 0 && meta.Unmarshal(b) == nil && (meta.Name != "" || meta.GenerateName != "") {
				p.ObjectMeta = meta
			}
			break
		}
		m := protowire.ConsumeFieldValue(num, typ, raw)
		if m < 0 {
			break
		}
		raw = raw[m:]
	}
	return p
}

func decodeJSON(value []byte, v *Value) {
	gvk, err := json.DefaultMetaFactory.Interpret(value)
	if err != nil {
		v.Note = fmt.Sprintf("invalid JSON (%v); --raw prints the bytes", err)
		return
	}
	v.GVK = *gvk
	if v.GVK.Kind != "" && scheme.Scheme.Recognizes(v.GVK) {
		if obj, _, err := jsonSerializer.Decode(value, nil, nil); err == nil {
			v.Object = obj
			return
		}
	}
	// Custom resources, and kinds this build does not know: as stored.
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(value); err == nil {
		v.Object = u
	}
	v.JSON = value
}

func decodeCBOR(value []byte, v *Value) {
	u := &unstructured.Unstructured{}
	if _, _, err := cborSerializer.Decode(value, nil, u); err != nil {
		v.Note = fmt.Sprintf("corrupt CBOR (%v); --raw prints the bytes", err)
		return
	}
	v.GVK = u.GroupVersionKind()
	v.Object = u
	if !scheme.Scheme.Recognizes(v.GVK) {
		return
	}
	if obj, _, err := cborSerializer.Decode(value, nil, nil); err == nil {
		v.Object = obj
	}
}

// parseEncryption reads k8s:enc:<provider>:<version>:<key name>: from
// the head of an encrypted value (KMS v2 names its provider where the
// others name their key).
func parseEncryption(value []byte) *Encryption {
	parts := bytes.SplitN(value[len(encMagic):], []byte(":"), 4)
	if len(parts) < 4 {
		return &Encryption{}
	}
	for _, p := range parts[:3] {
		if len(p) == 0 || len(p) > 256 || !printable(p) {
			return &Encryption{}
		}
	}
	return &Encryption{Provider: string(parts[0]), Version: string(parts[1]), KeyName: string(parts[2])}
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func (e *Encryption) describe(size int) string {
	if e.Provider == "" {
		return fmt.Sprintf("encrypted at rest by the API server (%d bytes, prefix not understood); only the API server can decrypt it: read it through it (kubectl get)", size)
	}
	return fmt.Sprintf("encrypted at rest by the API server with provider %s %s, key %s (%d bytes); only the API server can decrypt it: read it through it (kubectl get)", e.Provider, e.Version, e.KeyName, size)
}

func looksJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// quote shows text in a note, cut short.
func quote(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + fmt.Sprintf(" (%d bytes, cut)", len(b))
	}
	return strconv.Quote(string(b))
}

func gvkString(gvk schema.GroupVersionKind) string {
	if gvk.Kind == "" {
		return "an object of no kind"
	}
	return gvk.Kind + " " + gvk.GroupVersion().String()
}
