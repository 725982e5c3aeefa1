package celery

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

func (b *Broker) parseTLS(q url.Values) error {
	b.tls, b.verify = true, true
	b.certReqs = q.Get("ssl_cert_reqs")
	switch strings.ToUpper(b.certReqs) {
	case "", "CERT_REQUIRED", "REQUIRED":
	case "CERT_OPTIONAL", "OPTIONAL":
		// Python verifies in client mode with CERT_OPTIONAL as with CERT_REQUIRED.
	case "CERT_NONE", "NONE":
		b.verify = false
	default:
		return fmt.Errorf("ssl_cert_reqs %q is not %s", b.certReqs, CertReqs)
	}
	b.caCerts, b.certFile, b.keyFile = q.Get("ssl_ca_certs"), q.Get("ssl_certfile"), q.Get("ssl_keyfile")
	if (b.certFile == "") != (b.keyFile == "") {
		return fmt.Errorf("ssl_certfile and ssl_keyfile go together")
	}
	return nil
}

func (b Broker) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(b.addrs[0])
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: !b.verify} //nolint:gosec // CERT_NONE asks for it
	if b.caCerts != "" {
		pem, err := os.ReadFile(b.caCerts)
		if err != nil {
			return nil, fmt.Errorf("read ssl_ca_certs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ssl_ca_certs %s holds no PEM certificate", b.caCerts)
		}
		c.RootCAs = pool
	}
	if b.certFile != "" {
		cert, err := tls.LoadX509KeyPair(b.certFile, b.keyFile)
		if err != nil {
			return nil, fmt.Errorf("load ssl_certfile/ssl_keyfile: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
