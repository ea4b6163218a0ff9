package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/plugin"
)

func TestReport(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{name: "an error", err: errors.New("boom"), want: 1},
		{name: "etcdctl's status", err: &plugin.ExitStatus{Code: 128}, want: 128},
		{name: "etcdctl's status, wrapped", err: fmt.Errorf("ctl: %w", &plugin.ExitStatus{Code: 2}), want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := report(tc.err); got != tc.want {
				t.Errorf("report(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}
