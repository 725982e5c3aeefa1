//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
)

// writePair puts an issued certificate and its key at dir/name.crt and
// dir/name.key.
func writePair(t testing.TB, p *tlstest.Pair, dir, name string) (certPath, keyPath string) {
	t.Helper()
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, certPath, p.CertPEM)
	writeFile(t, keyPath, p.KeyPEM)
	return certPath, keyPath
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("e2e: %v", err)
	}
}
