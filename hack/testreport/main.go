// Command testreport prints the closing tables of hack/test.sh: each
// stage's time, the slowest tests with their flavour and topology, and
// where each e2e scenario of the matrix (test/e2e/matrix.go) ran. It fails
// when a pair that ran did not pass a scenario the matrix puts there, so
// that a skip or a missing test cannot pass for coverage.
//
//	go run ./hack/testreport -dir DIR [-matrix pairwise|full] [-top 15]
//
// DIR holds stages.tsv (name, start and end in Unix seconds, result, and
// for a background step the CPU seconds it used; one stage a line, written
// by hack/test.sh), e2e-<flavour>-<nodes>.log (the `go test -v` output of
// each e2e run), and cpu.start and cpu.end (the first line of /proc/stat
// when the run began and ended), from which the machine's CPU use is told:
// a cold run is bound by its 2 cores, so its CPU seconds say where it grows.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/kubectl-etcd/kubectl-etcd/test/e2e"
)

func main() {
	dir := flag.String("dir", "", "the report directory of a hack/test.sh run")
	matrix := flag.String("matrix", "pairwise", "the e2e matrix the run used: pairwise or full")
	top := flag.Int("top", 15, "how many of the slowest tests to list")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "testreport: -dir is required")
		os.Exit(2)
	}
	bad, err := report(os.Stdout, *dir, *matrix, *top)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	if bad > 0 {
		os.Exit(1)
	}
}

// Stage is one line of stages.tsv.
type Stage struct {
	Name       string
	Start, End int64
	Result     string
	CPU        float64 // user and system seconds; 0 when not measured
}

// TestResult is one "--- PASS: Name (1.23s)" line of an e2e log.
type TestResult struct {
	Name, Pair, Result string
	Seconds            float64
}

func report(w io.Writer, dir, matrix string, top int) (bad int, err error) {
	stages, err := readStages(filepath.Join(dir, "stages.tsv"))
	if err != nil {
		return 0, err
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "e2e-*.log"))
	sort.Strings(logs)
	var tests []TestResult
	ran := map[string]bool{} // pairs with a log
	for _, l := range logs {
		pair := pairOf(filepath.Base(l))
		f, err := os.Open(l)
		if err != nil {
			return 0, err
		}
		rs := parseLog(f, pair)
		f.Close()
		ran[pair] = true
		tests = append(tests, rs...)
	}
	printStages(w, stages)
	if busy, total, ok := machineCPU(dir); ok {
		fmt.Fprintf(w, "machine CPU: %.0f of %.0f core-seconds busy (%.0f%%)\n", busy, total, 100*busy/total)
	}
	printSlowest(w, tests, top)
	if len(logs) > 0 {
		bad = printCoverage(w, tests, ran, matrix)
		n := map[string]int{}
		for _, t := range tests {
			n[t.Result]++
		}
		fmt.Fprintf(w, "e2e: %d passed, %d failed, %d skipped\n", n["PASS"], n["FAIL"], n["SKIP"])
	}
	return bad, nil
}

func readStages(path string) ([]Stage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Stage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 4 && len(p) != 5 {
			continue
		}
		s := Stage{Name: p[0], Result: p[3]}
		s.Start, _ = strconv.ParseInt(p[1], 10, 64)
		s.End, _ = strconv.ParseInt(p[2], 10, 64)
		if len(p) == 5 {
			s.CPU, _ = strconv.ParseFloat(p[4], 64)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// machineCPU reads how many core-seconds the machine spent busy (not idle,
// not waiting on I/O) between cpu.start and cpu.end, and how many passed.
func machineCPU(dir string) (busy, total float64, ok bool) {
	a, errA := readProcStat(filepath.Join(dir, "cpu.start"))
	b, errB := readProcStat(filepath.Join(dir, "cpu.end"))
	if errA != nil || errB != nil || len(a) != len(b) {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal; guest time is in user.
	for i := range min(len(a), 8) {
		d := float64(b[i]-a[i]) / 100 // USER_HZ
		total += d
		if i != 3 && i != 4 && i != 7 { // idle, iowait, stolen by the host
			busy += d
		}
	}
	return busy, total, total > 0
}

// readProcStat parses "cpu  user nice system idle iowait irq softirq ...".
func readProcStat(path string) ([]int64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(raw))
	if len(f) < 6 || f[0] != "cpu" {
		return nil, fmt.Errorf("%s: not a /proc/stat cpu line", path)
	}
	var out []int64
	for _, x := range f[1:] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		out = append(out, n)
	}
	return out, nil
}

var logName = regexp.MustCompile(`^e2e-(.+)-(\d+)\.log$`)

// pairOf turns e2e-1.33-1.log into 1.33/1.
func pairOf(base string) string {
	if m := logName.FindStringSubmatch(base); m != nil {
		return m[1] + "/" + m[2]
	}
	return base
}

var resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)

// parseLog reads the result lines of a `go test -v` log.
func parseLog(r io.Reader, pair string) []TestResult {
	var out []TestResult
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := resultLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		s, _ := strconv.ParseFloat(m[3], 64)
		out = append(out, TestResult{Name: m[2], Pair: pair, Result: m[1], Seconds: s})
	}
	return out
}

func printStages(w io.Writer, stages []Stage) {
	if len(stages) == 0 {
		return
	}
	first, last := stages[0].Start, stages[0].End
	for _, s := range stages {
		first = min(first, s.Start)
		last = max(last, s.End)
	}
	fmt.Fprintln(w, "=== stages")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tSTART\tTOOK\tCPU\tRESULT")
	for _, s := range stages {
		cpu := ""
		if s.CPU > 0 {
			cpu = fmt.Sprintf("%.0fs", s.CPU)
		}
		fmt.Fprintf(tw, "%s\t+%ds\t%ds\t%s\t%s\n", s.Name, s.Start-first, s.End-s.Start, cpu, s.Result)
	}
	fmt.Fprintf(tw, "total (wall)\t\t%ds (%dm%02ds)\t\t\n", last-first, (last-first)/60, (last-first)%60)
	tw.Flush()
}

func printSlowest(w io.Writer, tests []TestResult, top int) {
	var ts []TestResult
	for _, t := range tests {
		if t.Result != "SKIP" {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Seconds > ts[j].Seconds })
	fmt.Fprintf(w, "=== the %d slowest e2e tests\n", min(top, len(ts)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tFLAVOUR\tNODES\tTOOK\tRESULT")
	for _, t := range ts[:min(top, len(ts))] {
		f, n, _ := strings.Cut(t.Pair, "/")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fs\t%s\n", t.Name, f, n, t.Seconds, t.Result)
	}
	tw.Flush()
}

// printCoverage lists where each scenario passed, and counts the scenarios
// that did not pass on a pair that ran and that the matrix puts them on.
func printCoverage(w io.Writer, tests []TestResult, ran map[string]bool, matrix string) (bad int) {
	got := map[string]map[string]string{} // scenario -> pair -> result
	for _, t := range tests {
		if got[t.Name] == nil {
			got[t.Name] = map[string]string{}
		}
		got[t.Name][t.Pair] = t.Result
	}
	fmt.Fprintf(w, "=== e2e scenarios (%d, matrix %s): where each passed\n", len(e2e.Scenarios), matrix)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFAMILY\tMATRIX PUTS IT ON\tPASSED ON\tPROBLEM")
	for _, s := range e2e.Scenarios {
		var passed, problems []string
		for _, p := range s.Pairs(matrix) {
			switch r := got[s.Name][p]; {
			case r == "PASS":
				passed = append(passed, p)
			case !ran[p]:
			case r == "":
				problems = append(problems, p+": did not run")
			default:
				problems = append(problems, p+": "+r)
			}
		}
		if len(problems) > 0 {
			bad++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Family, strings.Join(s.Pairs(matrix), " "), strings.Join(passed, " "), strings.Join(problems, "; "))
	}
	tw.Flush()
	if bad > 0 {
		fmt.Fprintf(w, "testreport: %d scenario(s) did not pass where the matrix puts them\n", bad)
	}
	return bad
}
