package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
)

// TestExplainSaysWhatIsWrongWithTheAddress: a call that fails before the
// server answers is said in explain's own words, naming --addr and what to
// do, never as a raw gRPC status.
func TestExplainSaysWhatIsWrongWithTheAddress(t *testing.T) {
	plain := startServe(t)
	m := newMTLSFiles(t)
	secure := startServe(t, m.serverArgs...)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	tlstest.WriteFile(t, ca, m.ca.PEM)
	// A port that takes connections and never answers, as a stopped
	// process's does.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		close(held)
		for c := range held {
			c.Close()
		}
	})
	md := tempFile(t, "md.yaml", "brokerURL: redis://127.0.0.1:1/0\n")

	for _, tc := range []struct {
		name string
		addr string
		args []string
		want string
	}{
		{"nothing listens", "127.0.0.1:1", nil,
			"nothing listens there (connection refused): is montage-scaler serve running, and is this its --grpc-addr?"},
		{"the scaler's HTTP port", plain.httpAddr, nil,
			"this address speaks HTTP/1.1, not gRPC — is it the scaler's own port? explain wants serve's --grpc-addr (:9090 unless set), not its --http-addr (:8080) nor a Prometheus"},
		{"a name that does not resolve", "montage-scaler.invalid:9090", nil,
			"the host name does not resolve here: check its spelling, or give the address (host:port) the server listens on"},
		{"a port that never answers", silent.Addr().String(), []string{"--timeout", "1s"},
			"no answer within --timeout 1s: is this the address of a running montage-scaler serve (a firewall, or a stopped process, holds a connection without answering)?"},
		{"a TLS server asked in plaintext", secure.grpcAddr, nil,
			"the server closed the connection before speaking gRPC: does it serve TLS (serve --tls-cert)? then give --tls-ca, and --tls-cert and --tls-key for mutual TLS"},
		{"a plaintext server asked over TLS", plain.grpcAddr, []string{"--tls-ca", ca, "--tls-server-name", "localhost"},
			"the server does not speak TLS: drop --tls-ca, --tls-cert and --tls-key (or start serve with --tls-cert and --tls-key)"},
		{"mutual TLS without a client certificate", secure.grpcAddr, []string{"--tls-ca", ca, "--tls-server-name", "localhost"},
			"the server asks for a client certificate (serve --tls-client-ca): give --tls-cert and --tls-key, signed by that CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"explain", "--addr", tc.addr, "--metadata", md}, tc.args...)
			code, out, stderr := runWith(t, nil, args...)
			want := "montage-scaler explain: --addr " + tc.addr + ": " + tc.want + "\n"
			if code != exitNoDecision || out != "" || stderr != want {
				t.Fatalf("exit %d, stdout %q\nstderr %q\nwant 1 and %q", code, out, stderr, want)
			}
			if strings.Contains(stderr, "rpc error") || strings.Contains(stderr, "desc =") {
				t.Fatalf("a raw gRPC status: %s", stderr)
			}
		})
	}
}
