package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
	"github.com/montage/montage-scaler/test/servers"
)

// mtlsFiles is the scaler's side of a test PKI, as the tls overlay mounts it.
type mtlsFiles struct {
	ca                     *tlstest.CA
	server                 *tlstest.Pair
	cert, key, clientCA    string
	serverArgs             []string
	keda, other, plaintext grpc.DialOption
}

func newMTLSFiles(t *testing.T) *mtlsFiles {
	t.Helper()
	dir := t.TempDir()
	m := &mtlsFiles{ca: tlstest.NewCA(t, "montage-scaler CA"),
		cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), clientCA: filepath.Join(dir, "ca.crt")}
	m.server = m.ca.Server(t, "montage-scaler", "montage-scaler.montage-scaler.svc.cluster.local")
	tlstest.WriteFile(t, m.cert, m.server.CertPEM)
	tlstest.WriteFile(t, m.key, m.server.KeyPEM)
	tlstest.WriteFile(t, m.clientCA, m.ca.PEM)
	m.serverArgs = []string{"--tls-cert", m.cert, "--tls-key", m.key, "--tls-client-ca", m.clientCA, "--tls-reload-interval", "50ms"}
	clientTLS := func(certs ...tls.Certificate) grpc.DialOption {
		return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: m.ca.Pool(), Certificates: certs, ServerName: "localhost", MinVersion: tls.VersionTLS12}))
	}
	m.keda = clientTLS(m.ca.Client(t, "keda-operator").TLS)
	m.other = clientTLS()
	m.plaintext = grpc.WithTransportCredentials(insecure.NewCredentials())
	return m
}

// healthCheck makes one RPC on a new connection and returns the serial of
// the certificate the server presented.
func healthCheck(t *testing.T, addr string, opt grpc.DialOption) (*x509.Certificate, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var p peer.Peer
	resp, err := healthpb.NewHealthClient(conn).Check(ctxT(t), &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
	if err != nil {
		return nil, err
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return nil, fmt.Errorf("health status %v", resp.Status)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, fmt.Errorf("peer auth info %T, want TLS", p.AuthInfo)
	}
	return info.State.PeerCertificates[0], nil
}

func TestServeRequiresTheClientCertificateOverMutualTLS(t *testing.T) {
	m := newMTLSFiles(t)
	p := startServe(t, m.serverArgs...)

	// A refused client sees Unavailable with either the server's alert or a
	// broken pipe, whichever its transport reads first; scaler/tlsconfig's
	// tests assert the alerts themselves.
	cases := []struct {
		name string
		opt  grpc.DialOption
	}{
		{"KEDA holding the client certificate is served", m.keda},
		{"a TLS client without a certificate is refused", m.other},
		{"a plaintext client is refused", m.plaintext},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := healthCheck(t, p.grpcAddr, tc.opt)
			if tc.opt == m.keda {
				if err != nil {
					t.Fatalf("health check over mutual TLS: %v", err)
				}
				if leaf.SerialNumber.Cmp(m.server.Cert.SerialNumber) != 0 {
					t.Fatalf("server presented serial %v, want %v", leaf.SerialNumber, m.server.Cert.SerialNumber)
				}
				return
			}
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("err = %v, want Unavailable", err)
			}
		})
	}

	// The kubelet's probes stay on plaintext HTTP.
	if code, body := p.get(t, "/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("/readyz = %d %q, want 200 \"ok\\n\"", code, body)
	}
}

func TestServePicksUpARotatedCertificate(t *testing.T) {
	m := newMTLSFiles(t)
	p := startServe(t, m.serverArgs...)
	if _, err := healthCheck(t, p.grpcAddr, m.keda); err != nil {
		t.Fatal(err)
	}

	next := m.ca.Server(t, "montage-scaler-renewed")
	tlstest.WriteFile(t, m.key, next.KeyPEM)
	tlstest.WriteFile(t, m.cert, next.CertPEM)
	eventually(t, "the renewed certificate is served", func() error {
		leaf, err := healthCheck(t, p.grpcAddr, m.keda)
		if err != nil {
			return err
		}
		if leaf.SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
			return fmt.Errorf("serial %v, want %v", leaf.SerialNumber, next.Cert.SerialNumber)
		}
		return nil
	})
	_, body := p.get(t, "/metrics")
	want := fmt.Sprintf("montage_scaler_tls_cert_not_after_timestamp_seconds %s", strconv.FormatFloat(float64(next.Cert.NotAfter.Unix()), 'g', -1, 64))
	if !strings.Contains(body, want+"\n") {
		t.Fatalf("/metrics lacks %q", want)
	}
	if !strings.Contains(body, `montage_scaler_tls_reloads_total{result="error"} 0`+"\n") {
		t.Fatal(`/metrics lacks montage_scaler_tls_reloads_total{result="error"} 0`)
	}
}

func TestServeRefusesIncompleteTLSFlags(t *testing.T) {
	m := newMTLSFiles(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a certificate without its key", []string{"--tls-cert", m.cert}, exitUsage,
			"montage-scaler serve: --tls-cert and --tls-key go together: give both or neither\n"},
		{"a client CA without a server certificate", []string{"--tls-client-ca", m.clientCA}, exitUsage,
			"montage-scaler serve: --tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)\n"},
		{"a zero reload interval", []string{"--tls-reload-interval", "0s"}, exitUsage,
			"montage-scaler serve: --tls-reload-interval must be positive\n"},
		{"a key file holding no key", []string{"--tls-cert", m.cert, "--tls-key", m.clientCA, "--log-format", "text"}, 1,
			"tls: found a certificate rather than a key in the PEM for the private key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr servers.LogBuffer
			e := env{stdout: io.Discard, stderr: &stderr, getenv: func(string) (string, bool) { return "", false }}
			args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, tc.args...)
			code := run(t.Context(), args, e)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if tc.code == exitUsage && stderr.String() != tc.want {
				t.Fatalf("stderr = %q\nwant %q", stderr.String(), tc.want)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr = %q, want it to contain %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestExplainTalksMutualTLS(t *testing.T) {
	rs := servers.StartRedis(t)
	m := newMTLSFiles(t)
	p := startServe(t, m.serverArgs...)
	dir := t.TempDir()
	md := filepath.Join(dir, "md.yaml")
	writeFile(t, md, "brokerURL: "+rs.URL(0)+"\n")
	client := m.ca.Client(t, "an operator")
	cert, key := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	tlstest.WriteFile(t, cert, client.CertPEM)
	tlstest.WriteFile(t, key, client.KeyPEM)

	explain := func(args ...string) (int, string) {
		var out, errb strings.Builder
		code := run(t.Context(), append([]string{"explain", "--addr", p.grpcAddr, "--metadata", md, "--timeout", "5s"}, args...),
			env{stdout: &out, stderr: &errb, getenv: func(string) (string, bool) { return "", false }})
		return code, out.String() + errb.String()
	}
	if code, out := explain("--tls-ca", m.clientCA, "--tls-cert", cert, "--tls-key", key); code != 0 || !strings.Contains(out, `"name": "celery"`) {
		t.Fatalf("explain over mutual TLS: exit %d\n%s", code, out)
	}
	if code, out := explain("--tls-ca", m.clientCA); code != 1 {
		t.Fatalf("explain without a client certificate: exit %d, want 1 (refused)\n%s", code, out)
	}
	if code, out := explain("--tls-cert", cert, "--tls-key", key); code != 2 || !strings.Contains(out, "need --tls-ca") {
		t.Fatalf("client certificate without --tls-ca: exit %d\n%s", code, out)
	}
}

func TestExplainNamesTheServerForTLSThroughAPortForward(t *testing.T) {
	rs := servers.StartRedis(t)
	ca := tlstest.NewCA(t, "montage-scaler CA")
	// The certificate names only the Service, as the tls overlay's does; a
	// port-forward reaches the server at 127.0.0.1.
	const service = "montage-scaler.montage-scaler.svc.cluster.local"
	srv := ca.Issue(t, tlstest.Spec{CN: "montage-scaler", Server: true, DNS: []string{service}})
	dir := t.TempDir()
	cert, key, caFile, md := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt"), filepath.Join(dir, "md.yaml")
	tlstest.WriteFile(t, cert, srv.CertPEM)
	tlstest.WriteFile(t, key, srv.KeyPEM)
	tlstest.WriteFile(t, caFile, ca.PEM)
	writeFile(t, md, "brokerURL: "+rs.URL(0)+"\n")
	p := startServe(t, "--tls-cert", cert, "--tls-key", key)

	explain := func(args ...string) (int, string) {
		var out, errb strings.Builder
		code := run(t.Context(), append([]string{"explain", "--addr", p.grpcAddr, "--metadata", md, "--timeout", "5s", "--tls-ca", caFile}, args...),
			env{stdout: &out, stderr: &errb, getenv: func(string) (string, bool) { return "", false }})
		return code, out.String() + errb.String()
	}
	if code, out := explain(); code != exitNoDecision || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("explain without --tls-server-name: exit %d, want 1 naming the address the certificate lacks\n%s", code, out)
	}
	if code, out := explain("--tls-server-name", service); code != exitOK || !strings.Contains(out, `"name": "celery"`) {
		t.Fatalf("explain --tls-server-name %s: exit %d\n%s", service, code, out)
	}
}
