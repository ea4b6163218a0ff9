package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/test/e2e"
)

func TestParseLog(t *testing.T) {
	log := `=== RUN   TestMembers
    commands_test.go:40: $ kubectl etcd members
--- PASS: TestMembers (1.25s)
=== RUN   TestManifestEdited
    --- SKIP: TestManifestEdited/insecure-flag (0.00s)
    --- FAIL: TestManifestEdited/quota-nospace-recovery (61.70s)
--- FAIL: TestManifestEdited (90.10s)
PASS
`
	got := parseLog(strings.NewReader(log), "1.37/3")
	want := []TestResult{
		{"TestMembers", "1.37/3", "PASS", 1.25},
		{"TestManifestEdited/insecure-flag", "1.37/3", "SKIP", 0},
		{"TestManifestEdited/quota-nospace-recovery", "1.37/3", "FAIL", 61.7},
		{"TestManifestEdited", "1.37/3", "FAIL", 90.1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if p := pairOf("e2e-1.33-1.log"); p != "1.33/1" {
		t.Errorf("pairOf: %s", p)
	}
}

// A run where every scenario passed where the matrix puts it is clean; one
// skipped on a pair that ran and that the matrix puts it on is not, and
// neither is one missing from a log.
func TestCoverage(t *testing.T) {
	all := func(pair string, drop string, as string) string {
		var b strings.Builder
		for _, s := range e2e.Scenarios {
			if !s.RunsOn(pair, "pairwise") {
				b.WriteString("--- SKIP: " + s.Name + " (0.00s)\n")
				continue
			}
			switch {
			case s.Name == drop && as == "":
			case s.Name == drop:
				b.WriteString("--- " + as + ": " + s.Name + " (1.00s)\n")
			default:
				b.WriteString("--- PASS: " + s.Name + " (1.00s)\n")
			}
		}
		return b.String()
	}
	for _, c := range []struct {
		name, drop, as string
		bad            int
	}{
		{"clean", "", "", 0},
		{"skipped where it should run", "TestRestoreThenRollback", "SKIP", 1},
		{"missing", "TestMembers", "", 1},
		{"failed", "TestCtl", "FAIL", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, s string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("stages.tsv", "vet\t100\t130\tok\ne2e 1.33/1 (pairwise)\t130\t700\tok\n")
			write("e2e-1.33-1.log", all("1.33/1", c.drop, c.as))
			write("e2e-1.37-3.log", all("1.37/3", "", ""))
			var out strings.Builder
			bad, err := report(&out, dir, "pairwise", 15)
			if err != nil {
				t.Fatal(err)
			}
			if bad != c.bad {
				t.Errorf("%d bad, want %d:\n%s", bad, c.bad, out.String())
			}
			for _, want := range []string{"=== stages", "total (wall)", "600s", "=== the 15 slowest e2e tests", "=== e2e scenarios"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("no %q in:\n%s", want, out.String())
				}
			}
		})
	}
}

// The machine's busy time is user, nice, system, irq and softirq between
// the two /proc/stat lines; idle, iowait, steal count in the total only,
// and guest time (already in user) not at all.
func TestMachineCPU(t *testing.T) {
	for _, tc := range []struct {
		name, start, end string
		busy, total      float64
		ok               bool
	}{
		{"ticks of 1/100 s", "cpu  100 0 100 1000 0 0 0 0 0 0\n", "cpu  5100 100 2100 9500 200 50 50 0 900 0\n", 72, 159, true},
		{"missing end", "cpu  1 2 3 4 5 6 7 8 0 0\n", "", 0, 0, false},
		{"not a cpu line", "intr 1 2 3 4 5 6\n", "intr 1 2 3 4 5 6\n", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "cpu.start"), []byte(tc.start), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.end != "" {
				if err := os.WriteFile(filepath.Join(dir, "cpu.end"), []byte(tc.end), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			busy, total, ok := machineCPU(dir)
			if ok != tc.ok || busy != tc.busy || total != tc.total {
				t.Errorf("machineCPU = %v, %v, %v; want %v, %v, %v", busy, total, ok, tc.busy, tc.total, tc.ok)
			}
		})
	}
}
