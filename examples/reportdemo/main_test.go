package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const repoRoot = "../.."

// readme returns README.md followed by docs/*.md, where README moved the
// reference that is not a user's first read: the recipe and the table may
// be in either.
func readme(t *testing.T) string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, path := range append([]string{filepath.Join(repoRoot, "README.md")}, docs...) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
	}
	return out.String()
}

// TestREADMERecipeIsWhatTheDemoRuns: README's report recipe is the demo's
// commands, with README's names for the files and Prometheus's address.
func TestREADMERecipeIsWhatTheDemoRuns(t *testing.T) {
	steps := recipe(names{scaler: "bin/montage-scaler", promtool: "promtool", prometheus: "prometheus", dir: ".",
		listen: "127.0.0.1:9091", url: "http://127.0.0.1:9091", until: "2026-03-03T00:00:00Z", plot: "report.svg"})
	var want strings.Builder
	want.WriteString("```sh\n")
	for i, argv := range steps {
		want.WriteString(strings.Join(argv, " "))
		if i == prometheusStep {
			want.WriteString(" &")
		}
		want.WriteString("\n")
	}
	want.WriteString("```\n")
	if !strings.Contains(readme(t), want.String()) {
		t.Fatalf("neither README.md nor docs/*.md has the recipe make report-demo runs:\n%s", want.String())
	}
	end, err := traceEnd(filepath.Join(repoRoot, trace))
	if err != nil || end.Format("2006-01-02T15:04:05Z07:00") != "2026-03-03T00:00:00Z" {
		t.Fatalf("the trace ends at %v (%v), README's --until says 2026-03-03T00:00:00Z", end, err)
	}
}

// TestReportDemoPrintsTheTableREADMEShows runs the demo as make does, on
// the real binary, promtool and Prometheus, and holds report's row to the
// one README shows.
func TestReportDemoPrintsTheTableREADMEShows(t *testing.T) {
	if _, _, err := tools(options{}); err != nil {
		msg := fmt.Sprintf("SKIPPED %s: %v", t.Name(), err)
		fmt.Fprintln(os.Stderr, msg) // said even without -v: make test installs the package
		t.Skip(msg)
	}
	bin := filepath.Join(t.TempDir(), "montage-scaler")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/montage/montage-scaler/cmd/montage-scaler").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	row := regexp.MustCompile(`(?m)^\| montage \| ([^\n]*) \|$`).FindStringSubmatch(readme(t))
	if row == nil {
		t.Fatal("neither README.md nor docs/*.md shows a report row for the montage deployment")
	}
	plot := filepath.Join(t.TempDir(), "day.svg")
	t.Chdir(repoRoot)
	var out bytes.Buffer
	if err := run(t.Context(), options{scaler: bin, plot: plot}, &out); err != nil {
		t.Fatalf("report-demo: %v\n%s", err, out.String())
	}
	want := "montage " + strings.ReplaceAll(row[1], " | ", " ")
	got := ""
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "montage" {
			got = strings.Join(f, " ")
		}
	}
	if got != want {
		t.Errorf("report printed\n  %s\nREADME shows\n  %s\noutput:\n%s", got, want, out.String())
	}
	if b, err := os.ReadFile(plot); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("--plot %s: %v", plot, err)
	}
	for _, s := range []string{"$ " + bin + " simulate ", "promtool tsdb create-blocks-from openmetrics ", "--web.listen-address=127.0.0.1:0 &",
		"$ " + bin + " report --prometheus http://127.0.0.1:", "Try next:"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the demo does not print %q:\n%s", s, out.String())
		}
	}
}
