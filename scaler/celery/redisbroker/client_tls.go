package redisbroker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/montage/montage-scaler/scaler/celery"
)

// tlsConfig is the TLS of a rediss:// broker reached at addr; its files
// are read now.
func tlsConfig(addr string, t celery.BrokerTLS) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(addr)
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: !t.Verify} //nolint:gosec // CERT_NONE asks for it
	if t.CACerts != "" {
		pem, err := os.ReadFile(t.CACerts)
		if err != nil {
			return nil, fmt.Errorf("read ssl_ca_certs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ssl_ca_certs %s holds no PEM certificate", t.CACerts)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load ssl_certfile/ssl_keyfile: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
