package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTheDemosNextStepsRunAsWritten runs every montage-scaler command that
// make demo suggests last (examples/demo/next.txt) from the repository's
// root, as README's commands are run: the calendar example's feed is served
// on loopback as the suggested python3 -m http.server serves it, and a
// command naming a placeholder in capitals (HOST) only has its files
// checked.
func TestTheDemosNextStepsRunAsWritten(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "examples", "demo", "next.txt"))
	if err != nil {
		t.Fatal(err)
	}
	examples := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(repoRoot, "examples"))))
	t.Cleanup(examples.Close)
	served := regexp.MustCompile(`^http://127\.0\.0\.1:\d+/`)
	placeholder := regexp.MustCompile(`\b[A-Z]{4,}\b`)
	command := regexp.MustCompile(`^((?:[A-Z_]+=\S+ )*)bin/montage-scaler (.*)$`)
	ran := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		m := command.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		vars, values := map[string]string{}, m[2]
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = served.ReplaceAllString(v, examples.URL+"/")
			values += " " + v
		}
		args := repoArgs(m[2])
		if placeholder.MatchString(values) {
			for _, a := range strings.Fields(m[2]) {
				if strings.HasPrefix(a, "examples/") {
					if _, err := os.Stat(filepath.Join(repoRoot, a)); err != nil {
						t.Errorf("next.txt: %q names %s: %v", line, a, err)
					}
				}
			}
			continue
		}
		var out, errb bytes.Buffer
		getenv := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
		if code := run(t.Context(), args, env{stdout: &out, stderr: &errb, getenv: getenv}); code != exitOK {
			t.Errorf("next.txt: %s: exit %d\n%s%s", strings.TrimSpace(line), code, out.String(), errb.String())
		}
		ran[args[0]] = true
	}
	for _, cmd := range []string{"simulate", "forecast", "calendar"} {
		if !ran[cmd] {
			t.Errorf("next.txt suggests no %s command that runs as written", cmd)
		}
	}
}
