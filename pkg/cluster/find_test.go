package cluster

import "testing"

func TestIsHex(t *testing.T) {
	for s, want := range map[string]bool{"2d2a09cbbff63d10": true, "8e9e05c52164694d": true, "abc": true, "": false, "hc-cp1": false, "12345678901234567": false} {
		if got := isHex(s); got != want {
			t.Errorf("isHex(%q) = %v, want %v", s, got, want)
		}
	}
}
