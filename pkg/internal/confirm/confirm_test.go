package confirm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/hint"
)

func TestAsk(t *testing.T) {
	for _, tt := range []struct {
		name     string
		in       string
		terminal bool
		yes      bool
		accepted []string
		ok       bool
		asked    bool
	}{
		{name: "no terminal, no --yes", accepted: Yes},
		{name: "--yes without a terminal", yes: true, accepted: Yes, ok: true},
		{name: "--yes on a terminal asks nothing", terminal: true, yes: true, accepted: Yes, ok: true},
		{name: "y", in: "y\n", terminal: true, accepted: Yes, ok: true, asked: true},
		{name: "yes without a newline", in: "yes", terminal: true, accepted: Yes, ok: true, asked: true},
		{name: "n", in: "n\n", terminal: true, accepted: Yes, asked: true},
		{name: "empty answer", in: "\n", terminal: true, accepted: Yes, asked: true},
		{name: "typed the context", in: "kind-hc\n", terminal: true, accepted: []string{"kind-hc"}, ok: true, asked: true},
		{name: "y is not the context", in: "y\n", terminal: true, accepted: []string{"kind-hc"}, asked: true},
		{name: "no context to type refuses", in: "\n", terminal: true, accepted: []string{""}, asked: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var prompt bytes.Buffer
			err := Ask(strings.NewReader(tt.in), &prompt, tt.terminal, tt.yes, "Go on?", tt.accepted...)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok %t", err, tt.ok)
			}
			if (prompt.Len() > 0) != tt.asked {
				t.Errorf("prompt %q, want asked %t", prompt.String(), tt.asked)
			}
			if !tt.terminal && !tt.yes && hint.Of(err) == "" {
				t.Errorf("refusal without a terminal has no hint: %v", err)
			}
		})
	}
}
