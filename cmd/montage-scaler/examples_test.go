package main

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository, seen from this package.
const repoRoot = "../.."

// docFiles returns README.md, docs/*.md, deploy/README.md and every
// Markdown and YAML file under examples/.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	read := func(rel string) {
		b, err := os.ReadFile(filepath.Join(repoRoot, rel))
		if err != nil {
			t.Fatal(err)
		}
		out[rel] = string(b)
	}
	for _, rel := range userDocs(t) {
		read(rel)
	}
	read("deploy/README.md")
	err := filepath.WalkDir(filepath.Join(repoRoot, "examples"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext == ".md" || ext == ".yaml" {
			rel, _ := filepath.Rel(repoRoot, path)
			read(rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExamplesKeepPrometheusOffTheScalersGRPCPort: on one machine the
// examples run serve on its default gRPC port and a Prometheus beside it;
// no HTTP URL on loopback, and no port-forward of Prometheus, may take the
// scaler's port (check would then talk HTTP/1 to gRPC).
func TestExamplesKeepPrometheusOffTheScalersGRPCPort(t *testing.T) {
	var f serveFlags
	_, grpcPort, err := net.SplitHostPort(f.flagSet().Lookup("grpc-addr").DefValue)
	if err != nil {
		t.Fatal(err)
	}
	loopbackHTTP := regexp.MustCompile(`https?://(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)`)
	forward := regexp.MustCompile(`port-forward svc/prometheus\S*\s+(\d+)(?::\d+)?`)
	files := docFiles(t)
	for name, body := range files {
		for _, m := range loopbackHTTP.FindAllStringSubmatch(body, -1) {
			if m[1] == grpcPort {
				t.Errorf("%s: %s is on the scaler's gRPC port %s", name, m[0], grpcPort)
			}
		}
		for _, m := range forward.FindAllStringSubmatch(body, -1) {
			if m[1] == grpcPort {
				t.Errorf("%s: %q forwards Prometheus to the scaler's gRPC port %s", name, m[0], grpcPort)
			}
		}
	}
	// The grpcurl examples talk to the scaler on that port.
	if !strings.Contains(files["examples/grpcurl.md"], "127.0.0.1:"+grpcPort+" list") {
		t.Errorf("examples/grpcurl.md no longer calls serve on its default port %s", grpcPort)
	}
}
