// Package tlsconfig provides a server TLS configuration whose certificate,
// key and client CA bundle are re-read when their files change, so a rotated
// Kubernetes Secret (or a cert-manager renewal) takes effect without a
// restart and without dropping open connections.
package tlsconfig

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often the files are checked when Options.Interval is 0.
const DefaultInterval = 10 * time.Second

// Options say where the TLS material lives and how it is watched.
type Options struct {
	// CertFile and KeyFile hold the server's PEM certificate chain and key.
	// Both are required.
	CertFile, KeyFile string
	// ClientCAFile, if set, holds the PEM CA bundle that client certificates
	// must chain to: every client must then present a valid certificate
	// (mutual TLS). Empty means TLS without client certificates.
	ClientCAFile string
	// Interval is how often the files are re-read; 0 means DefaultInterval.
	Interval time.Duration
	// Now is the clock used to verify client certificates; nil means time.Now.
	Now func() time.Time
	// Logger reports reloads and files that fail to load; nil discards.
	Logger *slog.Logger
	// OnReload, if set, is called after every check that found changed
	// files, with nil when they were loaded and the error when they were not
	// (the previous material is then kept): the hook for a metric.
	OnReload func(err error)
}

// material is one consistent load of the three files.
type material struct {
	cert     *tls.Certificate
	clientCA *x509.CertPool // nil without ClientCAFile
	// raw is the bytes the material was parsed from, to detect changes.
	raw [3][]byte
}

// Reloader holds the current TLS material and refreshes it from the files.
// Its Config is safe to use while Run swaps the material underneath.
type Reloader struct {
	o   Options
	now func() time.Time
	log *slog.Logger
	cur atomic.Pointer[material]

	mu sync.Mutex
	// lastBad is the content of the last failed load, so a broken file is
	// logged once, not on every check.
	lastBad [3][]byte
}

// New loads the files once; an error names the file that could not be used.
func New(o Options) (*Reloader, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("tlsconfig: both a certificate file and a key file are required")
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("tlsconfig: interval %v must not be negative", o.Interval)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	r := &Reloader{o: o, now: o.Now, log: o.Logger}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	raw, err := r.read()
	if err != nil {
		return nil, err
	}
	m, err := r.parse(raw)
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	return r, nil
}

// read returns the bytes of the certificate, key and client CA files.
func (r *Reloader) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, name := range []string{r.o.CertFile, r.o.KeyFile, r.o.ClientCAFile} {
		if name == "" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return raw, fmt.Errorf("tlsconfig: read %w", err)
		}
		raw[i] = b
	}
	return raw, nil
}

func (r *Reloader) parse(raw [3][]byte) (*material, error) {
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: certificate %s with key %s: %w", r.o.CertFile, r.o.KeyFile, err)
	}
	m := &material{cert: &cert, raw: raw}
	if r.o.ClientCAFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw[2]) {
			return nil, fmt.Errorf("tlsconfig: client CA %s: no PEM certificate found", r.o.ClientCAFile)
		}
		m.clientCA = pool
	}
	return m, nil
}

// Reload re-reads the files and, when they changed and load, swaps them in.
// On an error the previous material stays in use (a rotation may be half
// written: the next check tries again).
func (r *Reloader) Reload() error {
	raw, err := r.read()
	if err == nil && sameRaw(raw, r.cur.Load().raw) {
		return nil
	}
	if err == nil {
		var m *material
		if m, err = r.parse(raw); err == nil {
			r.cur.Store(m)
			r.mu.Lock()
			r.lastBad = [3][]byte{}
			r.mu.Unlock()
			r.log.Info("TLS material reloaded", "cert", r.o.CertFile, "notAfter", m.cert.Leaf.NotAfter, "serial", m.cert.Leaf.SerialNumber.String())
			if r.o.OnReload != nil {
				r.o.OnReload(nil)
			}
			return nil
		}
	}
	r.mu.Lock()
	repeated := sameRaw(raw, r.lastBad)
	r.lastBad = raw
	r.mu.Unlock()
	if !repeated {
		r.log.Warn("TLS material not reloaded; keeping the previous one", "err", err)
		if r.o.OnReload != nil {
			r.o.OnReload(err)
		}
	}
	return err
}

func sameRaw(a, b [3][]byte) bool {
	return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) && bytes.Equal(a[2], b[2])
}

// Run checks the files every Interval until ctx is done.
func (r *Reloader) Run(ctx context.Context) {
	ticker := time.NewTicker(r.o.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			_ = r.Reload() // logged and counted in Reload
		}
	}
}

// Certificate returns the leaf certificate currently served.
func (r *Reloader) Certificate() *x509.Certificate {
	return r.cur.Load().cert.Leaf
}

// Config returns a server TLS configuration (TLS 1.2 or later) that always
// uses the current material. With a client CA every client must present a
// certificate that chains to it and is valid for client authentication.
//
// The client CA is checked in VerifyConnection rather than through
// ClientCAs, because ClientCAs is fixed per Config; a Config swapped in by
// GetConfigForClient would have to repeat the caller's settings (gRPC adds
// its ALPN protocol to the Config it is given).
func (r *Reloader) Config() *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cur.Load().cert, nil
		},
	}
	if r.o.ClientCAFile != "" {
		c.ClientAuth = tls.RequireAnyClientCert
		c.VerifyConnection = r.verifyClient
	}
	return c
}

// verifyClient verifies the client's chain against the current client CA.
func (r *Reloader) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsconfig: client certificate required")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         r.cur.Load().clientCA,
		Intermediates: inter,
		CurrentTime:   r.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("tlsconfig: client certificate %q: %w", cs.PeerCertificates[0].Subject.CommonName, err)
	}
	return nil
}
