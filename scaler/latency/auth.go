package latency

import (
	"crypto/tls"
	"crypto/x509"
	"strings"

	"github.com/montage/montage-scaler/scaler/meta"
)

// Auth is how requests to Prometheus authenticate. Its String and LogValue
// never show the secrets.
type Auth struct {
	BearerToken string
	Username    string
	Password    string
	// Headers are extra request headers, in the order given.
	Headers [][2]string
	// CA is a PEM bundle of roots to trust instead of the system's.
	CA []byte
	// ClientCert and ClientKey are a PEM client certificate and its key.
	ClientCert []byte
	ClientKey  []byte
}

// String names which kinds of auth are set, never their values.
func (a Auth) String() string {
	var kinds []string
	if a.BearerToken != "" {
		kinds = append(kinds, "bearer")
	}
	if a.Username != "" {
		kinds = append(kinds, "basic")
	}
	if len(a.Headers) > 0 {
		names := make([]string, len(a.Headers))
		for i, h := range a.Headers {
			names[i] = h[0]
		}
		kinds = append(kinds, "headers("+strings.Join(names, ",")+")")
	}
	if len(a.CA) > 0 {
		kinds = append(kinds, "ca")
	}
	if len(a.ClientCert) > 0 {
		kinds = append(kinds, "client-cert")
	}
	if len(kinds) == 0 {
		return "none"
	}
	return strings.Join(kinds, "+")
}

// authKeys are the Prometheus credentials.
var authKeys = []string{
	"prometheusBearerToken", "prometheusUsername", "prometheusPassword", "prometheusHeaders",
	"prometheusCA", "prometheusClientCert", "prometheusClientKey",
}

// Secrets are what no text quoted from an upstream may repeat: the URLs'
// secret parts, the bearer token, the password, header values that look
// secret.
func (c *Config) Secrets() []string {
	out := meta.URLSecrets(c.PrometheusURL)
	for _, u := range c.MetricsURLs {
		out = append(out, meta.URLSecrets(u)...)
	}
	out = append(out, c.Auth.BearerToken, c.Auth.Password)
	for _, h := range c.Auth.Headers {
		if meta.LooksSecret(h[1]) || isSecretHeader(h[0]) {
			out = append(out, h[1])
		}
	}
	return out
}

// isSecretHeader reports whether a header's name says it carries a
// credential.
func isSecretHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "token", "key", "secret", "pass", "cookie"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Shown names the upstream for logs: the Prometheus URL or the scrape
// URLs, redacted.
func (c *Config) Shown() string {
	if c.Mode == ModeScrape {
		return redactList(c.MetricsURLs)
	}
	return meta.Redact(c.PrometheusURL)
}

// redactList is a comma list of URLs, each redacted.
func redactList(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = meta.Redact(u)
	}
	return strings.Join(out, ",")
}

// parseAuth reads the Prometheus credentials: a bearer token or a user and
// password, extra headers, and the TLS material.
func parseAuth(m *meta.Map) (Auth, error) {
	var a Auth
	get := func(key string) (string, error) {
		v, _, err := m.FromEnv(key, true)
		return v, err
	}
	var err error
	if a.BearerToken, err = get("prometheusBearerToken"); err != nil {
		return a, err
	}
	if a.Username, err = get("prometheusUsername"); err != nil {
		return a, err
	}
	if a.Password, err = get("prometheusPassword"); err != nil {
		return a, err
	}
	if a.Password != "" && a.Username == "" {
		return a, &meta.Error{Key: "prometheusUsername", Allowed: `required with "prometheusPassword"`}
	}
	if a.Username != "" && a.BearerToken != "" {
		return a, &meta.Error{Key: "prometheusBearerToken", Value: "<redacted>", Allowed: `not together with "prometheusUsername": choose one`}
	}
	headers, err := get("prometheusHeaders")
	if err != nil {
		return a, err
	}
	if a.Headers, err = parseHeaders(headers); err != nil {
		return a, err
	}
	err = a.parseTLS(get)
	return a, err
}

// parseHeaders reads prometheusHeaders: name=value pairs separated by
// commas.
func parseHeaders(headers string) ([][2]string, error) {
	var out [][2]string
	for item := range strings.SplitSeq(headers, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t:\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, &meta.Error{Key: "prometheusHeaders", Value: "<redacted>", Allowed: "name=value pairs separated by commas, such as X-Scope-OrgID=montage,X-Token=abc"}
		}
		out = append(out, [2]string{k, strings.TrimSpace(v)})
	}
	return out, nil
}

// parseTLS reads prometheusCA and the client certificate with its key,
// each checked to be what it says.
func (a *Auth) parseTLS(get func(key string) (string, error)) error {
	ca, err := get("prometheusCA")
	if err != nil {
		return err
	}
	if ca != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(ca)) {
			return &meta.Error{Key: "prometheusCA", Value: "<redacted>", Allowed: "PEM certificates (-----BEGIN CERTIFICATE-----)"}
		}
		a.CA = []byte(ca)
	}
	cert, err := get("prometheusClientCert")
	if err != nil {
		return err
	}
	key, err := get("prometheusClientKey")
	if err != nil {
		return err
	}
	switch {
	case cert != "" && key == "":
		return &meta.Error{Key: "prometheusClientKey", Allowed: `required with "prometheusClientCert": the PEM private key`}
	case cert == "" && key != "":
		return &meta.Error{Key: "prometheusClientCert", Allowed: `required with "prometheusClientKey": the PEM certificate`}
	case cert != "":
		if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
			return &meta.Error{Key: "prometheusClientCert", Value: "<redacted>", Allowed: "a PEM certificate and its matching PEM key in prometheusClientKey"}
		}
		a.ClientCert, a.ClientKey = []byte(cert), []byte(key)
	}
	return nil
}
