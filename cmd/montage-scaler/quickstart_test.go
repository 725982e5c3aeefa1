package main

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/spec"
	"github.com/montage/montage-scaler/test/servers"
)

// readmeSection returns README.md's "## title…" section, up to the next
// second-level heading.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	readme := readRepoFile(t, "README.md")
	i := strings.Index(readme, "\n## "+title)
	if i < 0 {
		t.Fatalf("README.md has no section %q", "## "+title)
	}
	section := readme[i+1:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j+1]
	}
	return section
}

// fences returns the bodies of a Markdown text's fenced blocks of one info
// string ("sh", "yaml", "" for a bare fence), in order.
func fences(md, info string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^ *```([a-z]*)\n(.*?)^ *```\n").FindAllStringSubmatch(md, -1) {
		if m[1] == info {
			out = append(out, m[2])
		}
	}
	return out
}

// TestREADMEMetadataTableNamesEveryKnownKey: every key the scaler reads is
// in README's Trigger metadata section, the reference that comes before the
// components' internals.
func TestREADMEMetadataTableNamesEveryKnownKey(t *testing.T) {
	section := readmeSection(t, "Trigger metadata")
	for _, k := range spec.KnownKeys(components.Pure()) {
		if !strings.Contains(section, "`"+k+"`") {
			t.Errorf("README.md's Trigger metadata section does not name `%s`", k)
		}
	}
}

// TestREADMEQuickstartRunsAsWritten runs README's "serve against your own
// broker" quickstart against a real redis-server: the metadata file it
// shows is examples/metadata.yaml as it is, serve starts as written (on
// port 0 here, its default port checked against explain's --addr), and
// explain and check, with the broker named as the quickstart names it,
// print what the quickstart shows.
func TestREADMEQuickstartRunsAsWritten(t *testing.T) {
	section := readmeSection(t, "Quickstart: `serve` against your own broker")
	yamls := fences(section, "yaml")
	if len(yamls) != 1 || yamls[0] != readRepoFile(t, "examples/metadata.yaml") {
		t.Fatalf("the quickstart's metadata block is not examples/metadata.yaml as it is:\n%v", yamls)
	}
	if !regexp.MustCompile(`(?m)^build:\n(?:\t.*\n)*\t.*-o bin/montage-scaler `).MatchString(readRepoFile(t, "Makefile")) {
		t.Fatal("make build does not write bin/montage-scaler")
	}
	var f serveFlags
	_, grpcPort, err := net.SplitHostPort(f.flagSet().Lookup("grpc-addr").DefValue)
	if err != nil {
		t.Fatal(err)
	}

	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.LPush(t.Context(), "celery", "a", "b", "c").Err(); err != nil {
		t.Fatal(err)
	}

	vars := map[string]string{}
	var p *scalerProc
	var commands []string
	outputs := map[string]string{}
	for _, block := range fences(section, "sh") {
		for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
			line, _, _ = strings.Cut(line, "#")
			fields := strings.Fields(line)
			switch {
			case len(fields) == 0:
			case fields[0] == "make" && len(fields) == 2 && fields[1] == "build":
			case fields[0] == "export":
				k, v, ok := strings.Cut(fields[1], "=")
				if u, err := url.Parse(v); !ok || err != nil || u.Scheme != "redis" {
					t.Fatalf("%q: want NAME=redis://…", line)
				}
				vars[k] = rs.URL(0) // the broker the quickstart means: here, the test's
			case len(fields) == 2 && fields[0] == "bin/montage-scaler" && fields[1] == "serve":
				p = startServe(t)
			case fields[0] == "bin/montage-scaler":
				args := repoArgs(strings.Join(fields[1:], " "))
				for i, a := range args {
					if a == "--addr" && i+1 < len(args) {
						host, port, err := net.SplitHostPort(args[i+1])
						if err != nil || host != "127.0.0.1" || port != grpcPort {
							t.Fatalf("%q: --addr %s is not serve's default gRPC address, 127.0.0.1:%s", line, args[i+1], grpcPort)
						}
						if p == nil {
							t.Fatalf("%q runs before serve", line)
						}
						args[i+1] = p.grpcAddr
					}
				}
				code, out, stderr := runWith(t, vars, args...)
				if code != exitOK {
					t.Fatalf("%s: exit %d\n%s%s", line, code, out, stderr)
				}
				commands = append(commands, args[0])
				outputs[args[0]] = out
			default:
				t.Fatalf("the quickstart runs %q, which this test does not know", line)
			}
		}
	}
	if strings.Join(commands, " ") != "explain check" {
		t.Fatalf("the quickstart ran %v after serve, want explain then check", commands)
	}
	// The output it shows is explain's, its clock readings aside.
	shown := fences(section, "")
	if len(shown) != 1 {
		t.Fatalf("want one output block in the quickstart, found %d", len(shown))
	}
	varying := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|oldestWait=\S+`)
	norm := func(s string) string {
		s = varying.ReplaceAllString(s, "…")
		return regexp.MustCompile(` +`).ReplaceAllString(s, " ")
	}
	for name, out := range outputs {
		if norm(out) != norm(shown[0]) {
			t.Errorf("%s printed\n%s\nthe quickstart shows\n%s", name, out, shown[0])
		}
	}
}
