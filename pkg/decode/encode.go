package decode

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

var (
	prettyJSON = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Pretty: true})
	yamlOut    = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true})
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

// YAML is the object as YAML, fields in kubectl's order (sorted).
func (v *Value) YAML() ([]byte, error) {
	if v.JSON != nil {
		return yaml.JSONToYAML(v.JSON)
	}
	if v.Object == nil {
		return nil, fmt.Errorf("the value is not an object")
	}
	var buf bytes.Buffer
	err := yamlOut.Encode(v.Object, &buf)
	return buf.Bytes(), err
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
