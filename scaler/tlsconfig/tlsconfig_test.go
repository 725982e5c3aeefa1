package tlsconfig_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/tlsconfig"
	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
)

// pki is a CA, a server pair and a client pair written to a temp dir.
type pki struct {
	dir                    string
	ca                     *tlstest.CA
	server, client         *tlstest.Pair
	certFile, keyFile, cas string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{dir: dir, ca: tlstest.NewCA(t, "montage test CA"),
		certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key"), cas: filepath.Join(dir, "ca.crt")}
	p.server = p.ca.Server(t, "montage-scaler")
	p.client = p.ca.Client(t, "keda-operator")
	tlstest.WriteFile(t, p.certFile, p.server.CertPEM)
	tlstest.WriteFile(t, p.keyFile, p.server.KeyPEM)
	tlstest.WriteFile(t, p.cas, p.ca.PEM)
	return p
}

// serveTLS accepts connections with cfg; each successful handshake is
// answered with "ok\n" so a client learns of a rejection made after its own
// side of a TLS 1.3 handshake finished.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
				if tc.Handshake() == nil {
					_, _ = tc.Write([]byte("ok\n"))
				}
			})
		}
	})
	return lis.Addr().String()
}

// dial handshakes as a client trusting roots and presenting certs, and returns
// the server's leaf certificate once the server has said "ok".
func dial(addr string, roots *x509.CertPool, certs ...tls.Certificate) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: roots, Certificates: certs, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return nil, err
	}
	if line != "ok\n" {
		return nil, errors.New("unexpected answer " + line)
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestMutualTLSHandshakes(t *testing.T) {
	p := newPKI(t)
	r, err := tlsconfig.New(tlsconfig.Options{CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: p.cas})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.Config())
	other := tlstest.NewCA(t, "someone else's CA")

	cases := []struct {
		name    string
		certs   []tls.Certificate
		wantErr string
	}{
		{"a client holding a certificate of the client CA is served", []tls.Certificate{p.client.TLS}, ""},
		{"a client without a certificate is refused", nil, "certificate required"},
		{"a client whose certificate comes from another CA is refused", []tls.Certificate{other.Client(t, "intruder").TLS}, "bad certificate"},
		{"a server certificate of the right CA is refused as a client certificate", []tls.Certificate{p.ca.Server(t, "not-a-client").TLS}, "bad certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := dial(addr, p.ca.Pool(), tc.certs...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("handshake failed: %v", err)
				}
				if leaf.SerialNumber.Cmp(p.server.Cert.SerialNumber) != 0 {
					t.Fatalf("server presented serial %v, want %v", leaf.SerialNumber, p.server.Cert.SerialNumber)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestTLSWithoutClientCAServesAnyClient(t *testing.T) {
	p := newPKI(t)
	r, err := tlsconfig.New(tlsconfig.Options{CertFile: p.certFile, KeyFile: p.keyFile})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := dial(serveTLS(t, r.Config()), p.ca.Pool())
	if err != nil {
		t.Fatalf("handshake failed: %v", err)
	}
	if leaf.Subject.CommonName != "montage-scaler" {
		t.Fatalf("server CN = %q, want montage-scaler", leaf.Subject.CommonName)
	}
}

func TestReloadPicksUpARotatedCertificateAndClientCA(t *testing.T) {
	p := newPKI(t)
	var mu sync.Mutex
	var reloads []error
	r, err := tlsconfig.New(tlsconfig.Options{CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: p.cas,
		OnReload: func(err error) { mu.Lock(); reloads = append(reloads, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.Config())

	if err := r.Reload(); err != nil {
		t.Fatalf("reload of unchanged files: %v", err)
	}
	if len(reloads) != 0 {
		t.Fatalf("unchanged files reported %d reloads, want 0", len(reloads))
	}

	// The server certificate rotates (same CA).
	next := p.ca.Server(t, "montage-scaler-2")
	tlstest.WriteFile(t, p.certFile, next.CertPEM)
	tlstest.WriteFile(t, p.keyFile, next.KeyPEM)
	if err := r.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	leaf, err := dial(addr, p.ca.Pool(), p.client.TLS)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
		t.Fatalf("after rotation the server presented serial %v, want %v", leaf.SerialNumber, next.Cert.SerialNumber)
	}
	if got := r.Certificate().Subject.CommonName; got != "montage-scaler-2" {
		t.Fatalf("Certificate() CN = %q, want montage-scaler-2", got)
	}

	// The client CA rotates: the old CA's clients are refused, the new CA's served.
	ca2 := tlstest.NewCA(t, "montage test CA 2")
	tlstest.WriteFile(t, p.cas, ca2.PEM)
	if err := r.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, err := dial(addr, p.ca.Pool(), p.client.TLS); err == nil {
		t.Fatal("a client of the retired CA was served")
	}
	if _, err := dial(addr, p.ca.Pool(), ca2.Client(t, "keda-operator").TLS); err != nil {
		t.Fatalf("a client of the new CA was refused: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reloads) != 2 || reloads[0] != nil || reloads[1] != nil {
		t.Fatalf("OnReload calls = %v, want [nil nil]", reloads)
	}
}

func TestAHalfWrittenRotationKeepsThePreviousCertificate(t *testing.T) {
	p := newPKI(t)
	var reloads []error
	r, err := tlsconfig.New(tlsconfig.Options{CertFile: p.certFile, KeyFile: p.keyFile,
		OnReload: func(err error) { reloads = append(reloads, err) }})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.Config())

	// Only the certificate has been replaced so far: it does not match the key.
	next := p.ca.Server(t, "montage-scaler-2")
	tlstest.WriteFile(t, p.certFile, next.CertPEM)
	err = r.Reload()
	want := "tlsconfig: certificate " + p.certFile + " with key " + p.keyFile + ": tls: private key does not match public key"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("second reload of the same bad files succeeded")
	}
	if len(reloads) != 1 {
		t.Fatalf("the same bad files were reported %d times, want once", len(reloads))
	}
	leaf, err := dial(addr, p.ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(p.server.Cert.SerialNumber) != 0 {
		t.Fatalf("server presented serial %v, want the previous %v", leaf.SerialNumber, p.server.Cert.SerialNumber)
	}

	// The key arrives: the rotation completes.
	tlstest.WriteFile(t, p.keyFile, next.KeyPEM)
	if err := r.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := r.Certificate().SerialNumber; got.Cmp(next.Cert.SerialNumber) != 0 {
		t.Fatalf("serial = %v, want %v", got, next.Cert.SerialNumber)
	}
	if len(reloads) != 2 || reloads[1] != nil {
		t.Fatalf("OnReload calls = %v, want [error nil]", reloads)
	}
}

func TestRunReloadsChangedFiles(t *testing.T) {
	p := newPKI(t)
	r, err := tlsconfig.New(tlsconfig.Options{CertFile: p.certFile, KeyFile: p.keyFile, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(t.Context()) }()
	next := p.ca.Server(t, "montage-scaler-2")
	tlstest.WriteFile(t, p.keyFile, next.KeyPEM)
	tlstest.WriteFile(t, p.certFile, next.CertPEM)
	deadline := time.Now().Add(30 * time.Second)
	for r.Certificate().SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the rotated certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewNamesTheFileThatCannotBeUsed(t *testing.T) {
	p := newPKI(t)
	junk := filepath.Join(p.dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(p.dir, "missing.crt")
	cases := []struct {
		name string
		o    tlsconfig.Options
		want string
	}{
		{"a missing key file is required", tlsconfig.Options{CertFile: p.certFile},
			"tlsconfig: both a certificate file and a key file are required"},
		{"a certificate file that does not exist is named", tlsconfig.Options{CertFile: missing, KeyFile: p.keyFile},
			"tlsconfig: read open " + missing + ": no such file or directory"},
		{"a client CA file without a certificate is named", tlsconfig.Options{CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: junk},
			"tlsconfig: client CA " + junk + ": no PEM certificate found"},
		{"a key that is no key is named with its certificate", tlsconfig.Options{CertFile: p.certFile, KeyFile: junk},
			"tlsconfig: certificate " + p.certFile + " with key " + junk + ": tls: failed to find any PEM data in key input"},
		{"a negative interval is refused", tlsconfig.Options{CertFile: p.certFile, KeyFile: p.keyFile, Interval: -time.Second},
			"tlsconfig: interval -1s must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsconfig.New(tc.o)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant %q", err, tc.want)
			}
		})
	}
}
