package hint

import (
	"errors"
	"fmt"
	"testing"
)

func TestHint(t *testing.T) {
	base := errors.New("pods is forbidden")
	perm := Permanent(base, "ask for a Role that allows %q", "create")
	wrapped := fmt.Errorf("member a: %w", perm)
	joined := errors.Join(errors.New("member b: timeout"), wrapped)
	tests := []struct {
		name      string
		err       error
		hint      string
		permanent bool
		text      string
	}{
		{"nil", nil, "", false, ""},
		{"plain", base, "", false, "pods is forbidden"},
		{"with", With(base, "try %s", "this"), "try this", false, "pods is forbidden.\ntry this"},
		{"permanent", perm, `ask for a Role that allows "create"`, true, "pods is forbidden.\nask for a Role that allows \"create\""},
		{"wrapped", wrapped, `ask for a Role that allows "create"`, true, "member a: pods is forbidden.\nask for a Role that allows \"create\""},
		{"joined", joined, `ask for a Role that allows "create"`, true, "member b: timeout\nmember a: pods is forbidden.\nask for a Role that allows \"create\""},
		{"errorf", Errorf("fix it", "bad %d", 1), "fix it", false, "bad 1.\nfix it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.hint {
				t.Errorf("Of = %q, want %q", got, tt.hint)
			}
			if got := IsPermanent(tt.err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			if tt.err != nil && tt.err.Error() != tt.text {
				t.Errorf("Error() = %q, want %q", tt.err.Error(), tt.text)
			}
			if !errors.Is(tt.err, base) && tt.name != "errorf" && tt.err != nil {
				t.Errorf("the cause is lost from the chain")
			}
		})
	}
	if With(nil, "x") != nil || Permanent(nil, "x") != nil {
		t.Error("a nil error must stay nil")
	}
}
