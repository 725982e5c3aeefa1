package tlsconfig_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/tlsconfig"
	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
)

// serviceName is the only name the server certificate of these tests
// carries: a port-forward reaches it at 127.0.0.1, which it does not name.
const serviceName = "montage-scaler.montage-scaler.svc.cluster.local"

// handshake dials addr with cfg and waits for serveTLS's "ok".
func handshake(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

func TestClientChecksTheServerNameItIsGiven(t *testing.T) {
	ca := tlstest.NewCA(t, "montage test CA")
	srv := ca.Issue(t, tlstest.Spec{CN: "montage-scaler", Server: true, DNS: []string{serviceName}})
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12})
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	tlstest.WriteFile(t, caFile, ca.PEM)

	cases := []struct {
		name, serverName, wantErr string
	}{
		{"without a server name the dialled address must be on the certificate", "",
			"cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
		{"the Service's name reaches a port-forwarded server", serviceName, ""},
		{"a name the certificate does not carry is refused", "other.example.org",
			"certificate is valid for " + serviceName + ", not other.example.org"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tlsconfig.Client(caFile, "", "", tc.serverName)
			if err != nil {
				t.Fatal(err)
			}
			err = handshake(addr, cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestClientRefusesAServerNameWithoutACA(t *testing.T) {
	_, err := tlsconfig.Client("", "", "", serviceName)
	want := "--tls-cert, --tls-key and --tls-server-name need --tls-ca (the CA of the server's certificate)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %q", err, want)
	}
}
