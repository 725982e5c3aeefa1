package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// adrPage is ADR-0002's page in the repository (docs/adr-0002.md): each
// decision, its value, where it lives and the test that holds it.
const adrPage = "docs/adr-0002.md"

// goDecls returns the names a Go file declares at top level: functions,
// types, constants, variables, and methods as Type.Method; and its package
// name.
func goDecls(t *testing.T, rel string) (pkg string, names map[string]bool) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot, rel), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	names = map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				names[d.Name.Name] = true
				continue
			}
			recv := d.Recv.List[0].Type
			if s, ok := recv.(*ast.StarExpr); ok {
				recv = s.X
			}
			if ix, ok := recv.(*ast.IndexExpr); ok {
				recv = ix.X
			}
			if id, ok := recv.(*ast.Ident); ok {
				names[id.Name+"."+d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					names[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names[n.Name] = true
					}
				}
			}
		}
	}
	return f.Name.Name, names
}

// goName is the Go name a link's text spells in backticks ("`decide.Foo`"),
// or "" when the text is not one.
var goName = regexp.MustCompile("^`([A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)*)`$")

// checkADRLink checks one link of the ADR table: its target exists, and a
// Go name in its text is declared in the Go file it points to. It returns
// the name ("" when the text names none).
func checkADRLink(t *testing.T, where string, l mdLink) (name string, rel string, ok bool) {
	t.Helper()
	rel = path.Clean(path.Join(path.Dir(adrPage), l.target))
	if strings.HasPrefix(rel, "../") || strings.Contains(l.target, "#") || strings.Contains(l.target, ":") {
		t.Errorf("%s: link %s: name a file of the repository, relative to docs/, without an anchor", where, l.target)
		return "", rel, false
	}
	if _, err := os.Stat(filepath.Join(repoRoot, rel)); err != nil {
		t.Errorf("%s: link [%s](%s): %s does not exist: point it at the file that holds it now", where, l.text, l.target, rel)
		return "", rel, false
	}
	m := goName.FindStringSubmatch(l.text)
	if m == nil {
		return "", rel, true
	}
	if !strings.HasSuffix(rel, ".go") {
		t.Errorf("%s: link [%s](%s): a Go name pointing at %s, which is no Go file", where, l.text, l.target, rel)
		return "", rel, false
	}
	pkg, decls := goDecls(t, rel)
	name = strings.TrimPrefix(m[1], pkg+".")
	if !decls[name] {
		t.Errorf("%s: link [%s](%s): %s declares no %s: point the link at the file that declares it, or rename it", where, l.text, l.target, rel, name)
		return "", rel, false
	}
	return name, rel, true
}

// TestADR0002TableNamesRealFilesAndTests reads docs/adr-0002.md's table:
// every decision names where it lives and a test that holds it, and every
// file, Go name and test function it names exists.
func TestADR0002TableNamesRealFilesAndTests(t *testing.T) {
	tables, ok := sectionTables(readRepoFile(t, adrPage), "The decisions")
	if !ok || len(tables) != 1 {
		t.Fatalf("%s: want one table under \"## The decisions\", found %d (section found: %t)", adrPage, len(tables), ok)
	}
	tb := tables[0]
	head := adrPage + ", the table under \"## The decisions\""
	decision, whereCol, testCol := tb.col(t, head, "decision"), tb.col(t, head, "where"), tb.col(t, head, "test")
	tb.col(t, head, "value")
	if len(tb.rows) < 15 {
		t.Fatalf("%s: only %d rows read: is the table still parsed?", adrPage, len(tb.rows))
	}
	for _, r := range tb.rows {
		if len(r.cells) != len(tb.head) {
			t.Errorf("%s:%d: %d cells, the header has %d", adrPage, r.n, len(r.cells), len(tb.head))
			continue
		}
		where := fmt.Sprintf("%s:%d (%s)", adrPage, r.n, r.cells[decision])
		places := cellLinks(r.cells[whereCol])
		if len(places) == 0 {
			t.Errorf("%s: the where column links no file", where)
		}
		for _, l := range places {
			checkADRLink(t, where, l)
		}
		tests := 0
		for _, l := range cellLinks(r.cells[testCol]) {
			name, rel, ok := checkADRLink(t, where, l)
			if !ok || !strings.HasSuffix(rel, "_test.go") {
				continue
			}
			if name == "" || strings.Contains(name, ".") {
				t.Errorf("%s: link [%s](%s): name the test function in backticks", where, l.text, l.target)
				continue
			}
			tests++
		}
		if tests == 0 {
			t.Errorf("%s: the test column names no test function of a _test.go file", where)
		}
	}
}

// adrCitation is how the repository cites the ADR.
var adrCitation = regexp.MustCompile(`ADR[- ]0002`)

// adrPageLink is a Markdown link to the ADR's page.
var adrPageLink = regexp.MustCompile(`\]\([^)\s]*adr-0002\.md(#[^)\s]*)?\)`)

// TestEveryADR0002CitationPointsHere: ADR-0002's text is not in the
// repository, docs/adr-0002.md is what the repository takes from it, so
// whoever reads "ADR-0002" finds the way there. A Go comment that cites it
// names docs/adr-0002.md in the same comment; a Markdown file that does
// links the page; any other tracked file that does names docs/adr-0002.md.
// Test data repeats what it tests, and Go code outside comments (a help
// text, a test's heading) is read by whoever runs it, not the repository's
// reader: both are left out.
func TestEveryADR0002CitationPointsHere(t *testing.T) {
	cited := 0
	for _, rel := range trackedFiles(t) {
		if rel == "" || rel == adrPage || strings.Contains("/"+rel, "/testdata/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, rel))
		if err != nil || len(b) > maxTrackedSize || bytes.IndexByte(b, 0) >= 0 || !adrCitation.Match(b) {
			continue // deleted in the work tree, binary, or no citation
		}
		cited++
		switch {
		case strings.HasSuffix(rel, ".go"):
			checkGoADRComments(t, rel, b)
		case strings.HasSuffix(rel, ".md"):
			if !adrPageLink.Match(b) {
				link, _ := filepath.Rel(filepath.Dir(filepath.Join(repoRoot, rel)), filepath.Join(repoRoot, adrPage))
				t.Errorf("%s:%d cites ADR-0002 and links %s nowhere: make a mention a link, [ADR-0002](%s)", rel, lineOf(b, adrCitation), adrPage, filepath.ToSlash(link))
			}
		default:
			if !bytes.Contains(b, []byte(adrPage)) {
				t.Errorf("%s:%d cites ADR-0002 and names %s nowhere: add it beside a mention (in a comment where the format has them)", rel, lineOf(b, adrCitation), adrPage)
			}
		}
	}
	if cited < 10 {
		t.Errorf("only %d files cite ADR-0002: is the pattern still matching?", cited)
	}
}

// checkGoADRComments checks the comments of one Go file that cite ADR-0002
// (each names docs/adr-0002.md).
func checkGoADRComments(t *testing.T, rel string, src []byte) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, rel, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	for _, g := range f.Comments {
		var text strings.Builder
		for _, c := range g.List {
			text.WriteString(c.Text)
			text.WriteByte('\n')
		}
		if s := text.String(); adrCitation.MatchString(s) && !strings.Contains(s, adrPage) {
			line := fset.Position(g.Pos()).Line + strings.Count(s[:adrCitation.FindStringIndex(s)[0]], "\n")
			t.Errorf("%s:%d: a comment cites ADR-0002 without naming %s: add it beside the mention", rel, line, adrPage)
		}
	}
}

// lineOf returns the 1-based line of re's first match in b.
func lineOf(b []byte, re *regexp.Regexp) int {
	loc := re.FindIndex(b)
	if loc == nil {
		return 0
	}
	return bytes.Count(b[:loc[0]], []byte("\n")) + 1
}
