package exec

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/util/term"
)

// TestStreamAsksForWhatItAttaches checks the exec request a stream
// makes: a terminal asks for one and no stderr (the terminal merges it).
func TestStreamAsksForWhatItAttaches(t *testing.T) {
	tests := []struct {
		name string
		s    Streams
		want url.Values
	}{
		{name: "plain", s: Streams{Stdin: strings.NewReader(""), Stdout: &strings.Builder{}, Stderr: &strings.Builder{}},
			want: url.Values{"stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}}},
		{name: "terminal", s: Streams{Stdin: strings.NewReader(""), Stdout: &strings.Builder{}, Stderr: &strings.Builder{}, TTY: true},
			want: url.Values{"stdin": {"true"}, "stdout": {"true"}, "tty": {"true"}}},
		{name: "output only", s: Streams{Stdout: &strings.Builder{}},
			want: url.Values{"stdout": {"true"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got url.Values
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = r.URL.Query()
				mu.Unlock()
				http.Error(w, "no upgrade here", http.StatusBadRequest)
			}))
			defer srv.Close()
			cfg := &rest.Config{Host: srv.URL}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ex := &RemoteExecutor{Config: cfg, Client: cs.CoreV1().RESTClient()}
			pod := PodRef{Namespace: "kube-system", Name: "etcd-a", Container: "etcd"}
			if err := ex.Stream(context.Background(), pod, []string{"etcdctl", "watch", "/k"}, tc.s); err == nil {
				t.Fatal("the stream succeeded against a server that refuses it")
			}
			mu.Lock()
			defer mu.Unlock()
			want := url.Values{"container": {"etcd"}, "command": {"etcdctl", "watch", "/k"}}
			for k, v := range tc.want {
				want[k] = v
			}
			for _, k := range []string{"container", "command", "stdin", "stdout", "stderr", "tty"} {
				if strings.Join(got[k], " ") != strings.Join(want[k], " ") {
					t.Errorf("%s = %q, want %q (query %v)", k, got[k], want[k], got)
				}
			}
		})
	}
}

type sizes []term.TerminalSize

func (s *sizes) Next() *term.TerminalSize {
	if len(*s) == 0 {
		return nil
	}
	n := (*s)[0]
	*s = (*s)[1:]
	return &n
}

func TestTerminalSizes(t *testing.T) {
	if TerminalSizes(nil) != nil {
		t.Error("no terminal, yet a size queue")
	}
	q := TerminalSizes(&sizes{{Width: 80, Height: 24}, {Width: 120, Height: 40}})
	for _, want := range []string{"80x24", "120x40"} {
		n := q.Next()
		if n == nil || fmt.Sprintf("%dx%d", n.Width, n.Height) != want {
			t.Fatalf("next size %+v, want %s", n, want)
		}
	}
	if q.Next() != nil {
		t.Error("sizes after the end")
	}
}
