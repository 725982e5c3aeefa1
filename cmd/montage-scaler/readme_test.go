package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/montage/montage-scaler/scaler/celery"
)

var update = flag.Bool("update", false, "rewrite the generated simulate tables of README.md and docs/*.md")

// userDocs returns the paths, relative to repoRoot, of README.md and the
// docs it moved its component internals to (docs/*.md), README first.
func userDocs(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(repoRoot, d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

// readRepoFile reads a file given relative to repoRoot.
func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// generatedBlock is a command of README.md or docs/ that prints Markdown,
// in a fence of its own, and the table under it.
var generatedBlock = regexp.MustCompile("(?m)^```sh\n(bin/montage-scaler (simulate [^\n]*--format markdown))\n```\n((?:\\|[^\n]*\n)+)")

// repoArgs splits a README command line into arguments, pointing the
// repository's files at repoRoot (the test runs in cmd/montage-scaler).
func repoArgs(line string) []string {
	var args []string
	for _, a := range strings.Fields(line) {
		if _, err := os.Stat(filepath.Join(repoRoot, a)); err == nil && strings.Contains(a, "/") {
			a = filepath.Join(repoRoot, a)
		}
		args = append(args, a)
	}
	return args
}

// TestDocsSimulateTables runs every simulate command of README.md and
// docs/*.md that prints Markdown and holds the table under it to the
// output, number for number. -update rewrites the tables.
func TestDocsSimulateTables(t *testing.T) {
	// Where the tables live: a file that loses them fails here, not silently.
	want := map[string]int{"README.md": 4, "docs/simulate.md": 13, "docs/forecast.md": 2}
	for _, rel := range userDocs(t) {
		doc := readRepoFile(t, rel)
		blocks := generatedBlock.FindAllStringSubmatchIndex(doc, -1)
		if len(blocks) < want[rel] {
			t.Errorf("found %d generated simulate tables in %s, want at least %d", len(blocks), rel, want[rel])
		}
		var out strings.Builder
		last := 0
		for _, m := range blocks {
			command, args, table := doc[m[2]:m[3]], doc[m[4]:m[5]], doc[m[6]:m[7]]
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), repoArgs(args), env{stdout: &stdout, stderr: &stderr, getenv: func(string) (string, bool) { return "", false }})
			if code != exitOK {
				t.Fatalf("%s: %s: exit %d\n%s", rel, command, code, stderr.String())
			}
			if *update {
				out.WriteString(doc[last:m[6]])
				out.WriteString(stdout.String())
				last = m[7]
				continue
			}
			if stdout.String() != table {
				t.Errorf("%s's table under\n  %s\ndrifted (go test ./cmd/montage-scaler -run TestDocsSimulateTables -update rewrites it):\n%s:\n%sprints:\n%s", rel, command, rel, table, stdout.String())
			}
		}
		if *update && len(blocks) > 0 {
			out.WriteString(doc[last:])
			if err := os.WriteFile(filepath.Join(repoRoot, rel), []byte(out.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// docCommand is a command line of the shell blocks of README.md and docs/.
var docCommand = regexp.MustCompile(`(?m)^(?:bin/)?montage-scaler (?:forecast|simulate|check|calendar|explain|report) [^\n]*`)

// TestDocsCommandsNameFilesThatExist: every file a command of README.md or
// docs/*.md names is in the repository, except the placeholders written in
// capitals (FILE, FILE.csv); the forecast's trace commands run as written.
func TestDocsCommandsNameFilesThatExist(t *testing.T) {
	file := regexp.MustCompile(`^[\w./-]+\.(?:yaml|csv|ics)$`)
	ran := 0
	for _, rel := range userDocs(t) {
		for _, line := range docCommand.FindAllString(readRepoFile(t, rel), -1) {
			line, _, _ = strings.Cut(line, "#")
			for _, a := range strings.Fields(line) {
				if !file.MatchString(a) || strings.Contains(a, "FILE") {
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, a)); err != nil {
					t.Errorf("%s: %q names %s, which does not exist", rel, strings.TrimSpace(line), a)
				}
			}
			command := strings.TrimPrefix(line, "bin/")
			if strings.Contains(command, "--trace examples/") && strings.HasPrefix(command, "montage-scaler forecast") {
				var stdout, stderr bytes.Buffer
				if code := run(t.Context(), repoArgs(strings.TrimPrefix(command, "montage-scaler ")), env{stdout: &stdout, stderr: &stderr,
					getenv: func(string) (string, bool) { return "", false }}); code != exitOK {
					t.Errorf("%s: %s: exit %d\n%s", rel, line, code, stderr.String())
				}
				ran++
			}
		}
	}
	if ran == 0 {
		t.Error("no forecast command over an example trace ran: README.md and docs/forecast.md show some")
	}
}

// TestREADMEListsEverySSLCertReqsSpelling: the brokerURL row names the
// values the parser takes, as its error does.
func TestREADMEListsEverySSLCertReqsSpelling(t *testing.T) {
	want := "ssl_cert_reqs=" + strings.ReplaceAll(celery.CertReqs, "|", `\|`)
	if !strings.Contains(readRepoFile(t, "README.md"), want) {
		t.Fatalf("README.md's brokerURL row lacks %q", want)
	}
}

// TestMakeDemoSaysWhatItDoesBeforeTheColdBuild: `make demo` prints what
// happens and how long the first build takes before it builds anything,
// and README.md gives the same figure.
func TestMakeDemoSaysWhatItDoesBeforeTheColdBuild(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^demo:(.*)\n((?:\t.*\n)+)`).FindStringSubmatch(string(mk))
	if m == nil {
		t.Fatal("Makefile has no demo target")
	}
	if strings.TrimSpace(m[1]) != "" {
		t.Fatalf("demo has prerequisites %q: they would build before its message", m[1])
	}
	minutes := regexp.MustCompile(`about (\d+) minutes`)
	var said string
	for _, line := range strings.Split(strings.TrimRight(m[2], "\n"), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "@echo") {
			if f := minutes.FindStringSubmatch(line); f != nil {
				said = f[1]
			}
			continue
		}
		if said == "" {
			t.Fatalf("demo runs %q before saying how long the cold build takes", line)
		}
		break
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "cold Go build cache that takes about "+said+" minutes") {
		t.Fatalf("README.md does not say the first make demo's cold build takes about %s minutes", said)
	}
}
