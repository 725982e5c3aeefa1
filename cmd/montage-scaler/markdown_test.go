package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// markdownFiles returns the repository's documentation, relative to
// repoRoot: README.md, docs/*.md, deploy/README.md and every Markdown file
// under examples/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	out := append(userDocs(t), "deploy/README.md")
	err := filepath.WalkDir(filepath.Join(repoRoot, "examples"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".md" {
			return err
		}
		rel, err := filepath.Rel(repoRoot, path)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mdLine is a line of a Markdown file outside its fenced code blocks.
type mdLine struct {
	n    int    // 1-based line number
	text string // the line
	// afterFence: the line before it closed a fenced block.
	afterFence bool
}

var fenceLine = regexp.MustCompile("^ {0,3}(```|~~~)")

// prose returns a Markdown text's lines outside fenced code blocks; a
// fence's own lines are left out too.
func prose(md string) []mdLine {
	var out []mdLine
	in, closed := "", false
	for i, l := range strings.Split(md, "\n") {
		if m := fenceLine.FindStringSubmatch(l); m != nil {
			switch {
			case in == "":
				in = m[1]
			case m[1] == in && strings.TrimSpace(l) == in:
				in, closed = "", true
			}
			continue
		}
		if in != "" {
			continue
		}
		out = append(out, mdLine{n: i + 1, text: l, afterFence: closed})
		closed = false
	}
	return out
}

var codeSpan = regexp.MustCompile("`+[^`]*`+")

// anchors returns the anchors GitHub gives a Markdown text's headings: the
// heading's text lower-cased, with everything but letters, digits, spaces,
// hyphens and underscores removed and spaces turned into hyphens; a repeated
// one gets -1, -2 ….
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	heading := regexp.MustCompile(`^ {0,3}#{1,6} +(.*?) *#* *$`)
	for _, l := range prose(md) {
		m := heading.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		for i := 1; out[a]; i++ {
			a = fmt.Sprintf("%s-%d", b.String(), i)
		}
		out[a] = true
	}
	return out
}

// TestAnchorsAreGitHubs pins the slug rule on headings of this repository.
func TestAnchorsAreGitHubs(t *testing.T) {
	md := "## ADR-0002's KPIs: recording rules, dashboard, `report`\n" +
		"### `montage-scaler check`, `explain` and `calendar`\n" +
		"### End to end under KEDA (`make e2e`)\n" +
		"## Acting on the wait: `queueWaitTarget`\n" +
		"## Limits\n## Limits\n" +
		"```sh\n# not a heading\n```\n"
	got := anchors(md)
	for _, want := range []string{"adr-0002s-kpis-recording-rules-dashboard-report", "montage-scaler-check-explain-and-calendar",
		"end-to-end-under-keda-make-e2e", "acting-on-the-wait-queuewaittarget", "limits", "limits-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("anchors %v: a line in a fence counted as a heading?", got)
	}
}

// TestMarkdownLinksResolve: every relative link of the documentation names
// a file or directory of the repository, and an anchor one of the target's
// headings (README, docs and deploy link into each other by section).
func TestMarkdownLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	scheme := regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	checked := 0
	for _, rel := range markdownFiles(t) {
		src := readRepoFile(t, rel)
		for _, l := range prose(src) {
			for _, m := range link.FindAllStringSubmatch(codeSpan.ReplaceAllString(l.text, ""), -1) {
				target := m[1]
				if scheme.MatchString(target) {
					continue
				}
				checked++
				path, anchor, _ := strings.Cut(target, "#")
				resolved := rel
				if path != "" {
					resolved = filepath.ToSlash(filepath.Join(filepath.Dir(rel), path))
				}
				info, err := os.Stat(filepath.Join(repoRoot, resolved))
				if err != nil {
					t.Errorf("%s:%d: link %s: %s does not exist", rel, l.n, target, resolved)
					continue
				}
				if anchor == "" {
					continue
				}
				if info.IsDir() || filepath.Ext(resolved) != ".md" {
					t.Errorf("%s:%d: link %s: an anchor into %s, which is no Markdown file", rel, l.n, target, resolved)
					continue
				}
				if !anchors(readRepoFile(t, resolved))[anchor] {
					t.Errorf("%s:%d: link %s: %s has no heading whose anchor is #%s", rel, l.n, target, resolved, anchor)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d relative links checked: is the link pattern still matching?", checked)
	}
}

// cells counts a table row's cells as GitHub splits them: at every pipe
// not escaped by a backslash (also inside code spans), a leading and a
// trailing pipe opening and closing the row.
func cells(row string) int {
	row = strings.TrimSpace(row)
	n := 0
	for i := 0; i < len(row); i++ {
		switch row[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n - 1
}

// TestMarkdownTablesRender: every table of the documentation renders as a
// table on GitHub: a blank line (or a closed fence) before it, a delimiter
// row under its header, and as many cells in every row as in the header
// (GitHub drops a row's extra cells without a word).
func TestMarkdownTablesRender(t *testing.T) {
	delimiter := regexp.MustCompile(`^\|(?: *:?-{3,}:? *\|)+$`)
	tables := 0
	for _, rel := range markdownFiles(t) {
		lines := prose(readRepoFile(t, rel))
		for i := 0; i < len(lines); i++ {
			if !strings.HasPrefix(strings.TrimSpace(lines[i].text), "|") {
				continue
			}
			start := i
			for i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i].text), "|") && lines[i].n == lines[start].n+(i-start) {
				i++
			}
			rows := lines[start:i]
			tables++
			head := rows[0]
			where := fmt.Sprintf("%s:%d", rel, head.n)
			if start > 0 && strings.TrimSpace(lines[start-1].text) != "" && lines[start-1].n == head.n-1 && !head.afterFence {
				t.Errorf("%s: a table right under a line of text, with no blank line between", where)
			}
			if len(rows) < 2 || !delimiter.MatchString(strings.TrimSpace(rows[1].text)) {
				t.Errorf("%s: table header %q has no |---| delimiter row under it: it renders as a paragraph", where, head.text)
				continue
			}
			want := cells(head.text)
			for _, r := range rows[1:] {
				if got := cells(r.text); got != want || !strings.HasSuffix(strings.TrimSpace(r.text), "|") {
					t.Errorf("%s:%d: %d cells (or no closing |), the header has %d: %.80s", rel, r.n, got, want, r.text)
				}
			}
		}
	}
	if tables < 20 {
		t.Errorf("only %d tables found: is the table pattern still matching?", tables)
	}
}
