package main

import (
	"regexp"
	"strings"
	"testing"
)

// mdTable is a Markdown table that a test reads as data: its header's cells
// and its rows' cells, each row with its line number.
type mdTable struct {
	head []string
	rows []mdRow
}

// mdRow is one body row of an mdTable.
type mdRow struct {
	n     int // 1-based line number in its file
	cells []string
}

// col returns the index of the first header cell that starts with name, or
// fails the test naming the table's file and line.
func (tb mdTable) col(t *testing.T, where, name string) int {
	t.Helper()
	for i, h := range tb.head {
		if strings.HasPrefix(strings.ToLower(h), name) {
			return i
		}
	}
	t.Fatalf("%s: the table has no column %q (header %q)", where, name, tb.head)
	return -1
}

// tableCells splits a table row into its trimmed cells where GitHub does:
// at every pipe not escaped by a backslash, a leading and a trailing pipe
// opening and closing the row.
func tableCells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	var out []string
	var b strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row):
			b.WriteByte(row[i])
			i++
			b.WriteByte(row[i])
		case row[i] == '|':
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(row[i])
		}
	}
	if rest := strings.TrimSpace(b.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

var mdHeading = regexp.MustCompile(`^ {0,3}(#{1,6}) +(.*?) *#* *$`)

// sectionTables returns the tables of a Markdown text's section whose
// heading is title (up to the next heading of the same or a higher level),
// in order; lines in fenced blocks are not read. ok is false when there is
// no such heading.
func sectionTables(md, title string) (tables []mdTable, ok bool) {
	level := 0
	var cur *mdTable
	prev := -1
	flush := func() {
		if cur != nil {
			tables = append(tables, *cur)
			cur = nil
		}
	}
	for _, l := range prose(md) {
		if m := mdHeading.FindStringSubmatch(l.text); m != nil {
			flush()
			switch {
			case level == 0 && m[2] == title:
				level, ok = len(m[1]), true
			case level > 0 && len(m[1]) <= level:
				return tables, ok
			}
			continue
		}
		if level == 0 {
			continue
		}
		text := strings.TrimSpace(l.text)
		if !strings.HasPrefix(text, "|") || (cur != nil && l.n != prev+1) {
			flush()
		}
		if !strings.HasPrefix(text, "|") {
			continue
		}
		prev = l.n
		switch {
		case cur == nil:
			cur = &mdTable{head: tableCells(text)}
		case strings.Trim(text, "|-: ") == "" && len(cur.rows) == 0:
			// the delimiter row
		default:
			cur.rows = append(cur.rows, mdRow{n: l.n, cells: tableCells(text)})
		}
	}
	flush()
	return tables, ok
}

// mdLink is an inline link of a table cell: its text and its target.
type mdLink struct{ text, target string }

var inlineLink = regexp.MustCompile(`\[([^\]]*)\]\(([^)\s]+)\)`)

// cellLinks returns a cell's inline links in order.
func cellLinks(cell string) []mdLink {
	var out []mdLink
	for _, m := range inlineLink.FindAllStringSubmatch(cell, -1) {
		out = append(out, mdLink{text: m[1], target: m[2]})
	}
	return out
}

func TestSectionTablesReadsOnlyItsSection(t *testing.T) {
	md := "# Doc\n\n## Other\n\n| a | b |\n|---|---|\n| x | y |\n\n" +
		"## Wanted\n\nText.\n\n| name | imports |\n|---|---|\n| `p` | a, b \\| c |\n| `q` | — |\n\n" +
		"```\n| not | a row |\n```\n\n### Sub\n\n| name | imports |\n|---|---|\n| `r` | [x](y) |\n\n## Next\n\n| z | z |\n|---|---|\n"
	tables, ok := sectionTables(md, "Wanted")
	if !ok || len(tables) != 2 {
		t.Fatalf("ok %t, %d tables, want 2: %+v", ok, len(tables), tables)
	}
	if got := tables[0].head; len(got) != 2 || got[1] != "imports" {
		t.Errorf("header %q", got)
	}
	if len(tables[0].rows) != 2 || tables[0].rows[0].cells[1] != `a, b \| c` || tables[0].rows[1].n != 16 {
		t.Errorf("rows %+v: want 2, an escaped pipe kept in its cell, the second on line 16", tables[0].rows)
	}
	if l := cellLinks(tables[1].rows[0].cells[1]); len(l) != 1 || l[0] != (mdLink{"x", "y"}) {
		t.Errorf("links %+v", l)
	}
	if _, ok := sectionTables(md, "Missing"); ok {
		t.Error("a missing section was found")
	}
}
