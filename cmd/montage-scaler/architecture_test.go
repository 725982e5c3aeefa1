package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// archPage and archSection are where the package table lives.
const (
	archPage    = "docs/architecture.md"
	archSection = "Packages: what each owns and may import"
)

// listedPackage is what the test takes from `go list -json`.
type listedPackage struct {
	ImportPath string
	Dir        string
	Doc        string
	GoFiles    []string
	Imports    []string
	Module     *struct{ Path string }
}

// modulePackages lists the module's packages with one `go list` call, by
// their path in the repository ("scaler/celery"), each with the module
// packages its non-test files import. generated holds the packages whose
// every file says it is generated.
func modulePackages(t *testing.T) (pkgs map[string]listedPackage, imports map[string][]string, generated map[string]bool) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool on PATH (%v): the import graph cannot be listed", err)
	}
	cmd := exec.Command(goTool, "list", "-json=ImportPath,Dir,Doc,GoFiles,Imports,Module", "./...")
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}
	pkgs, imports, generated = map[string]listedPackage{}, map[string][]string{}, map[string]bool{}
	var all []listedPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		all = append(all, p)
	}
	if len(all) == 0 || all[0].Module == nil {
		t.Fatalf("go list ./... listed no package of a module")
	}
	prefix := all[0].Module.Path + "/"
	for _, p := range all {
		rel, ok := strings.CutPrefix(p.ImportPath, prefix)
		if !ok {
			t.Fatalf("go list: %s is not under %s", p.ImportPath, prefix)
		}
		pkgs[rel] = p
		imports[rel] = []string{}
		for _, imp := range p.Imports {
			if q, ok := strings.CutPrefix(imp, prefix); ok {
				imports[rel] = append(imports[rel], q)
			}
		}
		generated[rel] = allGenerated(t, p)
	}
	return pkgs, imports, generated
}

// generatedLine is Go's marker of a generated file (go help generate).
var generatedLine = regexp.MustCompile(`^// Code generated .* DO NOT EDIT\.$`)

// allGenerated says whether every Go file of p carries the marker before
// its package clause.
func allGenerated(t *testing.T, p listedPackage) bool {
	t.Helper()
	if len(p.GoFiles) == 0 {
		return false
	}
	for _, f := range p.GoFiles {
		b, err := os.ReadFile(filepath.Join(p.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for s := bufio.NewScanner(bytes.NewReader(b)); s.Scan() && !strings.HasPrefix(s.Text(), "package "); {
			found = found || generatedLine.MatchString(s.Text())
		}
		if !found {
			return false
		}
	}
	return true
}

// archRow is one row of the package table.
type archRow struct {
	n       int    // line in archPage
	pkg     string // the package, by its path in the repository
	imports []string
}

var (
	codeSpanOnly = regexp.MustCompile("^`([^`]+)`$")
	parenthesis  = regexp.MustCompile(`\([^)]*\)`)
)

// archRows reads the package table: the first cell names one package in
// backticks, the imports cell lists module packages separated by commas
// (each may carry a note in parentheses; "—" is none), a package under
// scaler/ written without that prefix.
func archRows(t *testing.T, pkgs map[string]listedPackage) []archRow {
	t.Helper()
	tables, ok := sectionTables(readRepoFile(t, archPage), archSection)
	if !ok || len(tables) == 0 {
		t.Fatalf("%s: no table under the heading %q", archPage, archSection)
	}
	var rows []archRow
	for _, tb := range tables {
		where := fmt.Sprintf("%s, a table under %q", archPage, archSection)
		pkgCol, impCol := tb.col(t, where, "package"), tb.col(t, where, "imports")
		for _, r := range tb.rows {
			if len(r.cells) != len(tb.head) {
				t.Errorf("%s:%d: %d cells, the header has %d", archPage, r.n, len(r.cells), len(tb.head))
				continue
			}
			m := codeSpanOnly.FindStringSubmatch(r.cells[pkgCol])
			if m == nil {
				t.Errorf("%s:%d: the package cell %q is not one package in backticks (one row per package)", archPage, r.n, r.cells[pkgCol])
				continue
			}
			row := archRow{n: r.n, pkg: m[1], imports: []string{}}
			for _, name := range strings.Split(parenthesis.ReplaceAllString(r.cells[impCol], ""), ",") {
				name = strings.Trim(strings.TrimSpace(name), "`")
				switch {
				case name == "" || name == "—":
				case pkgs[name].ImportPath != "":
					row.imports = append(row.imports, name)
				case pkgs["scaler/"+name].ImportPath != "":
					row.imports = append(row.imports, "scaler/"+name)
				default:
					t.Errorf("%s:%d: row `%s`: its imports cell names %q, no package of the module", archPage, r.n, row.pkg, name)
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// shortName is how an imports cell writes a package.
func shortName(pkg string) string {
	if s, ok := strings.CutPrefix(pkg, "scaler/"); ok {
		return s
	}
	return pkg
}

// importsCell is the imports cell a package's row should have.
func importsCell(imports []string) string {
	if len(imports) == 0 {
		return "—"
	}
	names := make([]string, len(imports))
	for i, p := range imports {
		names[i] = shortName(p)
	}
	return strings.Join(names, ", ")
}

// TestArchitectureTableIsTheImportGraph holds docs/architecture.md's
// package table to `go list ./...`: every package of the module has one row
// (a generated one may), every row names a package, each row's imports cell
// lists exactly the module packages its non-test files import, and those
// are all in rows below it (imports point down). A failure says which row
// to add, fix or move, and a top-to-bottom order that works.
func TestArchitectureTableIsTheImportGraph(t *testing.T) {
	pkgs, imports, generated := modulePackages(t)
	rows := archRows(t, pkgs)
	if len(rows) < 20 {
		t.Fatalf("%s: only %d package rows read: is the table still parsed?", archPage, len(rows))
	}
	index := map[string]int{}
	for i, r := range rows {
		if j, dup := index[r.pkg]; dup {
			t.Errorf("%s:%d: a second row for `%s` (the first is on line %d): keep one", archPage, r.n, r.pkg, rows[j].n)
			continue
		}
		index[r.pkg] = i
		if pkgs[r.pkg].ImportPath == "" {
			t.Errorf("%s:%d: row `%s` names no package of the module: remove the row, or write the package's new path", archPage, r.n, r.pkg)
		}
	}
	var names []string
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)

	misplaced := false
	for _, p := range names {
		if _, ok := index[p]; ok || generated[p] {
			continue
		}
		where, fits := placeHint(p, rows, index, imports)
		misplaced = misplaced || !fits
		t.Errorf("%s: no row for package %s: add\n\t| `%s` | %s | %s |\n\t%s", archPage, p, p, ownsHint(pkgs[p]), importsCell(imports[p]), where)
	}
	for _, r := range rows {
		got, ok := imports[r.pkg]
		if !ok {
			continue
		}
		if !sameSet(got, r.imports) {
			t.Errorf("%s:%d: row `%s`: its imports cell is not what go list says it imports%s; write the cell as\n\t%s",
				archPage, r.n, r.pkg, setDiff(got, r.imports), importsCell(got))
		}
		for _, q := range got {
			j, ok := index[q]
			if ok && j <= index[r.pkg] {
				misplaced = true
				t.Errorf("%s:%d: row `%s` imports %s, whose row (line %d) is above it: imports point down, so move one of them", archPage, r.n, r.pkg, q, rows[j].n)
			}
		}
	}
	if misplaced {
		t.Errorf("%s: a top-to-bottom order of the rows that works, keeping today's where it can:\n\t%s", archPage, strings.Join(workingOrder(rows, names, imports, generated), "\n\t"))
	}
}

// ownsHint is a start for a new row's "owns" cell: the package's doc line.
func ownsHint(p listedPackage) string {
	doc := strings.TrimSuffix(p.Doc, ".")
	if _, rest, ok := strings.Cut(doc, " "); ok && strings.HasPrefix(doc, "Package ") {
		_, doc, _ = strings.Cut(rest, " ")
	}
	if doc == "" {
		return "what it owns"
	}
	return doc
}

// placeHint says where a missing package's row goes: below every row that
// imports it and above every row it imports; fits is false when today's
// order has no such place.
func placeHint(p string, rows []archRow, index map[string]int, imports map[string][]string) (where string, fits bool) {
	below, above := -1, len(rows)
	for q, imps := range imports {
		if i, ok := index[q]; ok && slices.Contains(imps, p) && i > below {
			below = i
		}
	}
	for _, q := range imports[p] {
		if i, ok := index[q]; ok && i < above {
			above = i
		}
	}
	var at []string
	if below >= 0 {
		at = append(at, fmt.Sprintf("below row `%s` (line %d, which imports it)", rows[below].pkg, rows[below].n))
	}
	if above < len(rows) {
		at = append(at, fmt.Sprintf("above row `%s` (line %d, which it imports)", rows[above].pkg, rows[above].n))
	}
	switch {
	case len(at) == 0:
		return "anywhere in the table", true
	case below >= above:
		return "no place in today's order fits (" + strings.Join(at, "; ") + "): reorder as the order below says", false
	}
	return strings.Join(at, " and "), true
}

// workingOrder sorts the packages so that each comes above all it imports,
// keeping the table's order where it can; a package without a row comes
// right below the last row that imports it.
func workingOrder(rows []archRow, names []string, imports map[string][]string, generated map[string]bool) []string {
	rank := map[string]int{}
	for i, r := range rows {
		if _, ok := imports[r.pkg]; ok {
			rank[r.pkg] = 2 * i
		}
	}
	importers := map[string]int{}
	for _, p := range names {
		if _, ok := rank[p]; !ok && !generated[p] {
			rank[p] = -1
		}
	}
	for p := range rank {
		for _, q := range imports[p] {
			if _, ok := rank[q]; ok {
				importers[q]++
			}
		}
	}
	for p, r := range rank {
		if r >= 0 {
			continue
		}
		for q, imps := range imports {
			if _, ok := rank[q]; ok && slices.Contains(imps, p) && 2*index(rows, q)+1 > rank[p] {
				rank[p] = 2*index(rows, q) + 1
			}
		}
	}
	var order []string
	for len(rank) > 0 {
		best := ""
		for p, r := range rank {
			if importers[p] == 0 && (best == "" || r < rank[best] || (r == rank[best] && p < best)) {
				best = p
			}
		}
		if best == "" {
			return append(order, "(an import cycle: go build would have said so)")
		}
		order = append(order, best)
		delete(rank, best)
		for _, q := range imports[best] {
			importers[q]--
		}
	}
	return order
}

// index is a package's row number, or -1.
func index(rows []archRow, pkg string) int {
	for i, r := range rows {
		if r.pkg == pkg {
			return i
		}
	}
	return -1
}

func sameSet(a, b []string) bool {
	return len(setDiff(a, b)) == 0
}

// setDiff says what go list has that the cell lacks, and the reverse.
func setDiff(listed, cell []string) string {
	var add, drop []string
	for _, p := range listed {
		if !slices.Contains(cell, p) {
			add = append(add, shortName(p))
		}
	}
	for _, p := range cell {
		if !slices.Contains(listed, p) {
			drop = append(drop, shortName(p))
		}
	}
	var s string
	if len(add) > 0 {
		s += " (add " + strings.Join(add, ", ") + ")"
	}
	if len(drop) > 0 {
		s += " (remove " + strings.Join(drop, ", ") + ": not imported)"
	}
	return s
}
