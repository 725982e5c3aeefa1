package deploy

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTheTLSRecipeLeavesOnlyIgnoredFilesAndBuilds runs deploy/README.md's
// openssl recipe for the tls overlay as written: every file it leaves in
// certs/ must be ignored by git (no key or request gets committed), and
// the overlay must build from them.
func TestTheTLSRecipeLeavesOnlyIgnoredFilesAndBuilds(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	readme, err := os.ReadFile(filepath.Join(deployDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\ncd deploy/overlays/tls/certs\n(.*?)kubectl apply -k \\.\\.\n```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("deploy/README.md has no openssl recipe for overlays/tls/certs")
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", "-euo", "pipefail", "-c", string(m[1]))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the recipe fails: %v\n%s", err, out)
	}

	ignore, err := os.ReadFile(filepath.Join(deployDir, "overlays/tls/certs/.gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(ignore), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	mem := loadDeploy(t)
	for _, e := range entries {
		ignored := false
		for _, p := range patterns {
			if ok, _ := path.Match(p, e.Name()); ok {
				ignored = true
			}
		}
		if !ignored {
			t.Errorf("the recipe leaves %s, which overlays/tls/certs/.gitignore does not ignore (%v)", e.Name(), patterns)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := mem.WriteFile(filepath.Join("/deploy/overlays/tls/certs", e.Name()), b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := buildErr(mem, "overlays/tls"); err != nil {
		t.Fatalf("the tls overlay does not build from the recipe's files: %v", err)
	}
}
