package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestTheCommittedTracesAreTheGeneratorsOutput regenerates both traces with
// the default seed and compares them with the committed files.
func TestTheCommittedTracesAreTheGeneratorsOutput(t *testing.T) {
	dir := t.TempDir()
	if err := run(dir, DefaultSeed); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"weeks.csv", "noisy-weeks.csv"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/traces/%s differs from the generator's output: run go run ./examples/traces/weeks -out examples/traces", name)
		}
	}
}
