//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/kubernetes/scheme"
)

// embeddedGroups are the groups of kube-apiserver's embedded
// apiextensions and aggregator servers: built in, though not in
// client-go's scheme, and stored under /registry/<group>/.
var embeddedGroups = map[string]bool{"apiextensions.k8s.io": true, "apiregistration.k8s.io": true}

// filledOnRead are the fields the API server's registry fills in (or
// drops) on each read of an object stored without them (or with them):
// the Decorators of pkg/registry/core/service and persistentvolumeclaim.
// Compared only where both copies have them. Every object also gets
// metadata.resourceVersion, from its key's mod revision: etcd's copy
// never holds it. (The storage codec defaults, on read, fields newer
// than an object; a cluster this suite started holds no such object.)
var filledOnRead = map[string][]string{
	"services":               {"spec.clusterIPs", "spec.ipFamilies", "spec.ipFamilyPolicy", "spec.internalTrafficPolicy"},
	"persistentvolumeclaims": {"spec.dataSourceRef"},
}

// TestGetEveryBuiltInKind reads one object of every built-in kind the
// cluster holds straight from etcd, by its kubectl-style reference
// (RESOURCE.GROUP/NAMESPACE/NAME), and compares it field by field with
// what the API server serves for it, both as at one revision (leases
// change every few seconds), in the version it is stored in.
func TestGetEveryBuiltInKind(t *testing.T) {
	scenario(t)
	r := mustSucceed(t, kubectl(t, "api-resources", "--verbs=list", "-o", "name"))
	var compared atomic.Int32
	// The kinds side by side (-parallel, which hack/test.sh sets): each is
	// a few reads, and only reads.
	t.Run("kinds", func(t *testing.T) {
		for _, res := range strings.Fields(r.stdout) {
			_, group, _ := strings.Cut(res, ".")
			// componentstatuses are probed on each read: etcd holds none.
			if res == "componentstatuses" || (group != "" && !embeddedGroups[group] && !scheme.Scheme.IsGroupRegistered(group)) {
				continue
			}
			t.Run(res, func(t *testing.T) {
				t.Parallel()
				if compareKind(t, res) {
					compared.Add(1)
				}
			})
		}
	})
	if compared := compared.Load(); compared < 15 {
		t.Errorf("only %d built-in kinds compared", compared)
	}
}

// object is one object, where the API server serves it.
type object struct {
	resource, plural, namespace, name string
	// served is the apiVersion the list was served in.
	served string
}

func (o object) ref() string {
	if o.namespace == "" {
		return o.resource + "/" + o.name
	}
	return o.resource + "/" + o.namespace + "/" + o.name
}

// at reads the object through the API server in apiVersion as it was
// at revision rev, exactly: a list of one, by name, at that revision
// (a get serves the newest).
func (o object) at(t *testing.T, apiVersion, rev string) (map[string]any, error) {
	t.Helper()
	p := "/apis/" + apiVersion
	if !strings.Contains(apiVersion, "/") {
		p = "/api/" + apiVersion
	}
	if o.namespace != "" {
		p += "/namespaces/" + o.namespace
	}
	q := url.Values{"fieldSelector": {"metadata.name=" + o.name}, "resourceVersion": {rev}, "resourceVersionMatch": {"Exact"}}
	list, err := rawGet(t, p+"/"+o.plural+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	items, _ := list["items"].([]any)
	if len(items) != 1 {
		return nil, fmt.Errorf("%d %s named %s at revision %s", len(items), o.plural, o.name, rev)
	}
	// The items of a list carry no type: the list's.
	obj, _ := items[0].(map[string]any)
	obj["apiVersion"], obj["kind"] = list["apiVersion"], strings.TrimSuffix(fmt.Sprint(list["kind"]), "List")
	return obj, nil
}

// compareKind compares the first object of res, as it was at one
// revision, read from etcd and through the API server; false when there
// is none to compare.
func compareKind(t *testing.T, res string) bool {
	t.Helper()
	for range 3 {
		o, ok := firstObject(t, res)
		if !ok {
			t.Logf("no %s in the cluster", res)
			return false
		}
		// A revision the object was at: etcd's newest, after the list.
		rev := currentRevision(t)
		served, err := o.at(t, o.served, rev)
		if err != nil {
			t.Logf("%s: %v (deleted since the list?)", o.ref(), err)
			continue
		}
		compareObject(t, o, rev, served)
		return true
	}
	t.Errorf("every %s went before it could be read", res)
	return false
}

func firstObject(t *testing.T, res string) (object, bool) {
	t.Helper()
	var list struct {
		Items []struct {
			APIVersion string
			Metadata   struct{ Name, Namespace string }
		}
	}
	r := mustSucceed(t, runQuiet(t, "kubectl", "get", res, "-A", "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("kubectl get %s: %v", res, err)
	}
	if len(list.Items) == 0 {
		return object{}, false
	}
	it := list.Items[0]
	plural, _, _ := strings.Cut(res, ".")
	return object{resource: res, plural: plural, namespace: it.Metadata.Namespace, name: it.Metadata.Name, served: it.APIVersion}, true
}

// currentRevision is etcd's newest revision, as a list's resourceVersion.
func currentRevision(t *testing.T) string {
	t.Helper()
	list, err := rawGet(t, "/api/v1/namespaces?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	rev := fmt.Sprint(resourceVersion(list))
	if rev == "" || rev == "<nil>" {
		t.Fatalf("a list without a resourceVersion: %v", list)
	}
	return rev
}

// compareObject reads o from etcd at revision rev, and compares it with
// served, the API server's copy at rev, or with the copy in the version
// it is stored in when that is another.
func compareObject(t *testing.T, o object, rev string, served map[string]any) {
	t.Helper()
	r := kubectl(t, "etcd", "get", o.ref(), "--rev", rev, "-o", "json")
	switch {
	case r.code != 0:
		t.Fatalf("kubectl etcd get %s --rev %s: exit %d\n%s", o.ref(), rev, r.code, r.stderr)
	case strings.Contains(r.stderr, "encrypted at rest"):
		t.Skipf("%s is encrypted at rest: only the API server can read it", o.ref())
	}
	stored, err := decodeObject(r.stdout)
	if err != nil {
		t.Fatalf("kubectl etcd get %s: %v\n%s", o.ref(), err, r.stdout)
	}
	// A kind this build does not know shows its metadata alone.
	metadataOnly := strings.Contains(r.stderr, "only its type and metadata")
	if version, _ := stored["apiVersion"].(string); version != o.served {
		if inStored, err := o.at(t, version, rev); err == nil {
			served = inStored
		} else {
			// Stored in a version no longer served (CustomResourceDefinitions
			// are stored as v1beta1): the metadata is the same in every one.
			t.Logf("%s is stored as %s (%v): comparing its metadata", o.ref(), version, err)
			metadataOnly = true
		}
	}
	// Fields newer than this build's client-go are not shown: compare
	// those it shows.
	subset := strings.Contains(r.stderr, "fields this build of kubectl-etcd does not know")
	if d := objectDiff(o.plural, stored, served, metadataOnly, subset); len(d) > 0 {
		t.Errorf("%s from etcd differs from the API server's at revision %s:\n  %s", o.ref(), rev, strings.Join(d, "\n  "))
	}
}

// rawGet reads path through the API server, as JSON.
func rawGet(t *testing.T, path string) (map[string]any, error) {
	t.Helper()
	r := runQuiet(t, "kubectl", "get", "--raw", path)
	if r.code != 0 {
		return nil, fmt.Errorf("kubectl get --raw %s: exit %d: %s", path, r.code, strings.TrimSpace(r.stderr))
	}
	return decodeObject(r.stdout)
}

// decodeObject decodes one JSON object, its numbers exact.
func decodeObject(s string) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var m map[string]any
	return m, d.Decode(&m)
}

func resourceVersion(obj map[string]any) any {
	md, _ := obj["metadata"].(map[string]any)
	return md["resourceVersion"]
}

// objectDiff lists where the copy from etcd and the served one differ,
// after taking out what the API server fills on read (see prune for the
// fields that count as absent).
func objectDiff(plural string, stored, served map[string]any, metadataOnly, subset bool) []string {
	for _, m := range []map[string]any{stored, served} {
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "resourceVersion")
		}
	}
	for _, f := range filledOnRead[plural] {
		if !has(stored, f) || !has(served, f) {
			drop(stored, f)
			drop(served, f)
		}
	}
	if metadataOnly {
		stored = map[string]any{"kind": stored["kind"], "metadata": stored["metadata"]}
		served = map[string]any{"kind": served["kind"], "metadata": served["metadata"]}
	}
	var out []string
	diffValue("", prune(stored), prune(served), subset, &out)
	sort.Strings(out)
	return out
}

func has(m map[string]any, path string) bool {
	head, rest, deeper := strings.Cut(path, ".")
	v, ok := m[head]
	if !deeper || !ok {
		return ok && v != nil
	}
	sub, ok := v.(map[string]any)
	return ok && has(sub, rest)
}

func drop(m map[string]any, path string) {
	head, rest, deeper := strings.Cut(path, ".")
	if !deeper {
		delete(m, head)
	} else if sub, ok := m[head].(map[string]any); ok {
		drop(sub, rest)
	}
}

// prune removes the fields that decode as if absent: null, false, 0,
// "", {} and []. Which of them a JSON encoder writes depends on the API
// version's omitempty tags, and the API server's version and this
// build's client-go need not be the same.
func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if x[k] = prune(e); isZero(x[k]) {
				delete(x, k)
			}
		}
	case []any:
		for i := range x {
			x[i] = prune(x[i])
		}
	}
	return v
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// diffValue appends the paths where stored and served differ; with
// subset, fields only served do not count.
func diffValue(path string, stored, served any, subset bool, out *[]string) {
	switch s := stored.(type) {
	case map[string]any:
		a, ok := served.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: etcd %v, served %v", path, stored, served))
			return
		}
		for k, v := range s {
			diffValue(path+"."+k, v, a[k], subset, out)
		}
		for k := range a {
			if _, ok := s[k]; !ok && !subset {
				*out = append(*out, fmt.Sprintf("%s.%s: only served", path, k))
			}
		}
	case []any:
		a, ok := served.([]any)
		if !ok || len(a) != len(s) {
			*out = append(*out, fmt.Sprintf("%s: etcd %v, served %v", path, stored, served))
			return
		}
		for i := range s {
			diffValue(fmt.Sprintf("%s[%d]", path, i), s[i], a[i], subset, out)
		}
	default:
		if !reflect.DeepEqual(stored, served) {
			*out = append(*out, fmt.Sprintf("%s: etcd %v, served %v", path, stored, served))
		}
	}
}
