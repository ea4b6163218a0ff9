package decode

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"

	"go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/kubernetes/scheme"
)

var (
	prettyJSON  = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Pretty: true})
	compactJSON = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{})
)

// IndentedJSON is the object as indented JSON, with a final newline: JSON
// as stored stays in its own field order.
func (v *Value) IndentedJSON() ([]byte, error) {
	if v.JSON != nil {
		var buf bytes.Buffer
		if err := stdjson.Indent(&buf, bytes.TrimSpace(v.JSON), "", "  "); err != nil {
			return nil, err
		}
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	if v.Object == nil {
		return nil, fmt.Errorf("the value is not an object")
	}
	var buf bytes.Buffer
	if err := prettyJSON.Encode(v.Object, &buf); err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// YAML is the object as YAML, as kubectl prints it (fields sorted).
// It is what sigs.k8s.io/yaml makes of the JSON, without parsing the
// JSON with a YAML parser, which costs several times the rest.
func (v *Value) YAML() ([]byte, error) {
	j := v.JSON
	if j == nil {
		if v.Object == nil {
			return nil, fmt.Errorf("the value is not an object")
		}
		var buf bytes.Buffer
		if err := compactJSON.Encode(v.Object, &buf); err != nil {
			return nil, err
		}
		j = buf.Bytes()
	}
	var obj any
	if err := utiljson.Unmarshal(j, &obj); err != nil {
		return nil, err
	}
	return yaml.Marshal(obj)
}

// EncodeProtobuf encodes obj as the API server stores it: the k8s\x00 magic
// and a runtime.Unknown holding its type and its protobuf. A typed
// object without its apiVersion and kind gets them from the scheme.
func EncodeProtobuf(obj runtime.Object) ([]byte, error) {
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil {
			return nil, err
		}
		obj = obj.DeepCopyObject()
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	}
	var buf bytes.Buffer
	err := protoSerializer.Encode(obj, &buf)
	return buf.Bytes(), err
}
