package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// serveLogs runs serve with the given flags and environment until it
// listens, stops it, and returns what it logged. terminal is what serve is
// told of its stderr: tests need no real terminal, they inject the check
// (main asks golang.org/x/term about the real stderr).
func serveLogs(t *testing.T, terminal bool, vars map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &servers.LogBuffer{}
	listening := make(chan struct{})
	e := env{stdout: logs, stderr: logs, getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		onListen: func(string, string) { close(listening) }, stderrIsTerminal: func() bool { return terminal }}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...), e)
	}()
	select {
	case <-listening:
	case code := <-exit:
		t.Fatalf("serve exited with %d before listening:\n%s", code, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not listen:\n%s", logs)
	}
	cancel()
	if code := <-exit; code != exitOK {
		t.Fatalf("serve exited with %d:\n%s", code, logs)
	}
	return logs.String()
}

// TestServeLogsTextAtATerminalAndJSONOtherwise: --log-format auto (the
// default) writes text when stderr is a terminal and JSON otherwise; the
// flag, or its variable, wins either way.
func TestServeLogsTextAtATerminalAndJSONOtherwise(t *testing.T) {
	for _, tc := range []struct {
		name     string
		terminal bool
		vars     map[string]string
		args     []string
		want     string
	}{
		{"a terminal gets text", true, nil, nil, "text"},
		{"a pipe or a pod's log gets JSON", false, nil, nil, "json"},
		{"--log-format json wins at a terminal", true, nil, []string{"--log-format", "json"}, "json"},
		{"--log-format text wins in a pipe", false, nil, []string{"--log-format", "text"}, "text"},
		{"the variable wins as the flag does", true, map[string]string{"MONTAGE_SCALER_LOG_FORMAT": "json"}, nil, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := serveLogs(t, tc.terminal, tc.vars, tc.args...)
			first, _, _ := strings.Cut(logs, "\n")
			got := "text"
			if strings.HasPrefix(first, "{") {
				got = "json"
			}
			if got != tc.want || !strings.Contains(first, "serving") {
				t.Fatalf("first line %q: %s, want %s, and the serving line first (no noise before it)", first, got, tc.want)
			}
		})
	}
	code, _, stderr := runWith(t, nil, "serve", "--log-format", "yaml")
	if want := "montage-scaler serve: --log-format \"yaml\": want auto, json or text\n"; code != exitUsage || stderr != want {
		t.Fatalf("--log-format yaml: exit %d, stderr %q; want 2, %q", code, stderr, want)
	}
}

// TestServeSaysWhichPortIsTakenOnce: a port another process holds is said
// once, naming the flag and what to do, and serve exits 1.
func TestServeSaysWhichPortIsTakenOnce(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	addr := held.Addr().String()
	for _, flag := range []string{"--grpc-addr", "--http-addr"} {
		args := []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "text", flag, addr}
		code, _, stderr := runWith(t, nil, args...)
		want := flag + " " + addr + ": address already in use: another process listens there (another serve?): give another address, or port 0 (127.0.0.1:0) for one the kernel picks, which the serving log line and --addr-file name"
		if code != exitNoDecision || !strings.Contains(stderr, want) || strings.Count(stderr, "listen ") > 0 {
			t.Errorf("%s taken: exit %d, stderr\n%s\nwant 1, %q, and no \"listen\" said again", flag, code, stderr, want)
		}
	}
	code, _, stderr := runWith(t, nil, "serve", "--grpc-addr", "9090", "--log-format", "text")
	if want := `--grpc-addr \"9090\": missing port in address: want host:port, such as :9090, 127.0.0.1:9090 or 127.0.0.1:0`; code != exitNoDecision || !strings.Contains(stderr, want) {
		t.Errorf("--grpc-addr 9090: exit %d, stderr\n%s\nwant 1 and %q", code, stderr, want)
	}
}
