package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// trackedDataFiles may be binary or over maxTrackedSize: data the tests or
// the examples need as they are. Empty today; add a path with the reason.
var trackedDataFiles = map[string]string{}

// maxTrackedSize bounds a tracked file: a build output or a dump committed
// by mistake is caught by size when it is not caught as binary.
const maxTrackedSize = 1 << 20

// TestNoTrackedFileIsABinaryOrOver1MB keeps build outputs out of the
// repository: a file git tracks must be text (no NUL byte in its first
// 8,000 bytes, git's own test) and at most 1 MiB, unless listed in
// trackedDataFiles.
func TestNoTrackedFileIsABinaryOrOver1MB(t *testing.T) {
	for _, path := range trackedFiles(t) {
		if _, ok := trackedDataFiles[path]; ok || path == "" {
			continue
		}
		full := filepath.Join(repoRoot, path)
		info, err := os.Lstat(full)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		if info.Size() > maxTrackedSize {
			t.Errorf("%s: %d bytes tracked (over 1 MiB): a build output? remove it, or list it in trackedDataFiles with the reason", path, info.Size())
			continue
		}
		b, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			t.Errorf("%s: a binary file is tracked: remove it (and ignore it in .gitignore), or list it in trackedDataFiles with the reason", path)
		}
	}
}

// trackedFiles are the paths git tracks, relative to the repository's
// root; the test is skipped outside a git checkout.
func trackedFiles(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(repoRoot, ".git")); err != nil {
		t.Skipf("not a git checkout (%v): nothing is tracked", err)
	}
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	return strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
}
