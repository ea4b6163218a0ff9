package e2e

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestMatrixIsComplete reads the e2e sources (build tag e2e, so this test
// runs in the ordinary `go test ./...`): every Test function starts with
// scenario(t) and is in the table, every t.Run subtest of a scenario is in
// it as Test/sub, nothing in the table is missing from the sources, and the
// table keeps its own rules.
func TestMatrixIsComplete(t *testing.T) {
	for _, b := range CheckMatrix() {
		t.Error(b)
	}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := map[string]bool{}
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fileHead(file), "e2e") {
			continue
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Name.Name == "TestMain" {
				continue
			}
			name := fn.Name.Name
			subs := subtests(fn)
			if len(subs) == 0 {
				found[name] = true
				if len(fn.Body.List) == 0 || !callsScenario(fn.Body.List[0]) {
					t.Errorf("%s (%s): its first statement must be scenario(t)", name, f)
				}
			}
			for _, s := range subs {
				found[name+"/"+s] = true
			}
		}
	}
	if len(found) == 0 {
		t.Fatal("no e2e test found in *_test.go")
	}
	var missing, stale []string
	for n := range found {
		if _, ok := Lookup(n); !ok {
			missing = append(missing, n)
		}
	}
	for _, s := range Scenarios {
		if !found[s.Name] {
			stale = append(stale, s.Name)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, n := range missing {
		t.Errorf("%s is not in the matrix table (test/e2e/matrix.go)", n)
	}
	for _, n := range stale {
		t.Errorf("the matrix table lists %s, which no e2e source defines", n)
	}
}

// fileHead is the build constraint line of a file, if any.
func fileHead(f *ast.File) string {
	var b strings.Builder
	for _, c := range f.Comments {
		for _, l := range c.List {
			if strings.HasPrefix(l.Text, "//go:build") {
				b.WriteString(l.Text)
			}
		}
	}
	return b.String()
}

// subtests are the literal names of t.Run calls whose body calls
// scenario(t): such a test is a group of scenarios.
func subtests(fn *ast.FuncDecl) []string {
	var out []string
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 2 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Run" {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		body, ok2 := call.Args[1].(*ast.FuncLit)
		if !ok || !ok2 || lit.Kind != token.STRING || len(body.Body.List) == 0 || !callsScenario(body.Body.List[0]) {
			return true
		}
		if s, err := strconv.Unquote(lit.Value); err == nil {
			out = append(out, s)
		}
		return true
	})
	return out
}

func callsScenario(st ast.Stmt) bool {
	es, ok := st.(*ast.ExprStmt)
	if !ok {
		return false
	}
	call, ok := es.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	id, ok := call.Fun.(*ast.Ident)
	return ok && id.Name == "scenario"
}

func TestRunsOn(t *testing.T) {
	for _, c := range []struct {
		s      Scenario
		pair   string
		matrix string
		want   bool
	}{
		{Scenario{Name: "a"}, "1.33/1", "pairwise", true},
		{Scenario{Name: "a"}, "1.37/3", "pairwise", true},
		{Scenario{Name: "a"}, "1.37/1", "pairwise", false},
		{Scenario{Name: "a"}, "1.37/1", "full", true},
		{Scenario{Name: "a", Smoke: true}, "1.33/3", "pairwise", true},
		{Scenario{Name: "a", MinNodes: 3}, "1.33/1", "full", false},
		{Scenario{Name: "a", MinNodes: 3}, "1.33/3", "pairwise", false},
		{Scenario{Name: "a", MinNodes: 3}, "1.33/3", "full", true},
		{Scenario{Name: "a", MinNodes: 3, Smoke: true}, "1.37/1", "pairwise", false},
		{Scenario{Name: "a", Pair: "1.33/1"}, "1.33/1", "pairwise", true},
		{Scenario{Name: "a", Pair: "1.33/1"}, "1.37/3", "pairwise", false},
		{Scenario{Name: "a", Pair: "1.33/1"}, "1.37/3", "full", true},
		{Scenario{Name: "a", Pair: "1.33/1"}, "1.33/3", "pairwise", false},
		{Scenario{Name: "a", Pair: "1.37/3", Smoke: true}, "1.33/3", "pairwise", true},
		{Scenario{Name: "a", MaxNodes: 1}, "1.37/1", "full", true},
		{Scenario{Name: "a", MaxNodes: 1}, "1.33/3", "full", false},
		{Scenario{Name: "a", MaxNodes: 1, Pair: "1.33/1"}, "1.33/1", "pairwise", true},
		{Scenario{Name: "a", MaxNodes: 1, Smoke: true}, "1.33/3", "pairwise", false},
	} {
		if got := c.s.RunsOn(c.pair, c.matrix); got != c.want {
			t.Errorf("%+v on %s (%s): %t, want %t", c.s, c.pair, c.matrix, got, c.want)
		}
	}
}

// The table's rules, on small tables: a family on one pair only misses a
// flavour and a topology; a Pair off the diagonal is refused.
func TestCheckMatrix(t *testing.T) {
	for _, c := range []struct {
		name  string
		table []Scenario
		want  []string
	}{
		{"both pairs", []Scenario{{Name: "a", Family: ReadOnly}}, nil},
		{"split across the diagonal", []Scenario{
			{Name: "a", Family: Restore, Pair: "1.33/1"},
			{Name: "b", Family: Restore, Pair: "1.37/3"},
		}, nil},
		{"one pair only", []Scenario{{Name: "a", Family: Fault, Pair: "1.37/3"}}, []string{
			"family fault never runs on flavour 1.33",
			"family fault never runs on topology 1",
		}},
		{"three nodes only", []Scenario{{Name: "a", Family: Fault, MinNodes: 3}}, []string{
			"family fault never runs on flavour 1.33",
			"family fault never runs on topology 1",
		}},
		{"off the diagonal", []Scenario{{Name: "a", Family: ReadOnly, Pair: "1.33/3"}}, []string{
			"a runs nowhere on the diagonal",
			"a: Pair 1.33/3 is not on the diagonal [1.33/1 1.37/3]",
			"family read-only never runs on flavour 1.33",
			"family read-only never runs on flavour 1.37",
			"family read-only never runs on topology 1",
			"family read-only never runs on topology 3",
		}},
		{"duplicate", []Scenario{{Name: "a", Family: ReadOnly}, {Name: "a", Family: ReadOnly}}, []string{"duplicate scenario a"}},
	} {
		got := checkMatrix(c.table)
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}
