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

var update = flag.Bool("update", false, "rewrite README.md's generated simulate tables")

// generatedBlock is a README command that prints Markdown, in a fence of
// its own, and the table under it.
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

// TestREADMESimulateTables runs every simulate command of README.md that
// prints Markdown and holds the table under it to the output, number for
// number. -update rewrites the tables.
func TestREADMESimulateTables(t *testing.T) {
	path := filepath.Join(repoRoot, "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	blocks := generatedBlock.FindAllStringSubmatchIndex(readme, -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d generated simulate tables in README.md, want the four example traces and weeks.csv", len(blocks))
	}
	var out strings.Builder
	last := 0
	for _, m := range blocks {
		command, args, table := readme[m[2]:m[3]], readme[m[4]:m[5]], readme[m[6]:m[7]]
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), repoArgs(args), env{stdout: &stdout, stderr: &stderr, getenv: func(string) (string, bool) { return "", false }})
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s", command, code, stderr.String())
		}
		if *update {
			out.WriteString(readme[last:m[6]])
			out.WriteString(stdout.String())
			last = m[7]
			continue
		}
		if stdout.String() != table {
			t.Errorf("README.md's table under\n  %s\ndrifted (go test ./cmd/montage-scaler -run TestREADMESimulateTables -update rewrites it):\nREADME:\n%sprints:\n%s", command, table, stdout.String())
		}
	}
	if *update {
		out.WriteString(readme[last:])
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readmeCommand is a command line of README.md's shell blocks.
var readmeCommand = regexp.MustCompile(`(?m)^(?:bin/)?montage-scaler (?:forecast|simulate|check|calendar|explain|report) [^\n]*`)

// TestREADMECommandsNameFilesThatExist: every file a README command names
// is in the repository, except the placeholders written in capitals
// (FILE, FILE.csv); the forecast's trace commands run as written.
func TestREADMECommandsNameFilesThatExist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	file := regexp.MustCompile(`^[\w./-]+\.(?:yaml|csv|ics)$`)
	for _, line := range readmeCommand.FindAllString(string(b), -1) {
		line, _, _ = strings.Cut(line, "#")
		for _, a := range strings.Fields(line) {
			if !file.MatchString(a) || strings.Contains(a, "FILE") {
				continue
			}
			if _, err := os.Stat(filepath.Join(repoRoot, a)); err != nil {
				t.Errorf("README.md: %q names %s, which does not exist", strings.TrimSpace(line), a)
			}
		}
		if strings.Contains(line, "--trace examples/") && strings.HasPrefix(line, "montage-scaler forecast") {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), repoArgs(strings.TrimPrefix(line, "montage-scaler ")), env{stdout: &stdout, stderr: &stderr,
				getenv: func(string) (string, bool) { return "", false }}); code != exitOK {
				t.Errorf("%s: exit %d\n%s", line, code, stderr.String())
			}
		}
	}
}

// TestREADMEListsEverySSLCertReqsSpelling: the brokerURL row names the
// values the parser takes, as its error does.
func TestREADMEListsEverySSLCertReqsSpelling(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := "ssl_cert_reqs=" + strings.ReplaceAll(celery.CertReqs, "|", `\|`)
	if !strings.Contains(string(b), want) {
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
