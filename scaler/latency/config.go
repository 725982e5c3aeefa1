// Package latency is the latency component's pure half: its metadata keys
// and Config, the Reading of the API's P95 and the scale target's current
// replicas, the quantile of a histogram, the component's opinion and its
// quota claims. It does no I/O: package latency/prom reads the P95 from
// Prometheus or the pods and keeps it fresh; package kube reads replicas.
package latency

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/meta"
)

// Mode says where the P95 comes from.
type Mode string

// The two modes.
const (
	// ModePromQL asks a Prometheus server with latencyQuery.
	ModePromQL Mode = "promql"
	// ModeScrape scrapes the pods' /metrics and computes the quantile itself.
	ModeScrape Mode = "scrape"
)

// Defaults of the latency keys (README's trigger metadata table).
const (
	DefaultTarget  = 80 * time.Millisecond
	DefaultTimeout = 3 * time.Second
	DefaultWindow  = time.Minute
)

// Config is the latency component of one trigger, parsed once.
type Config struct {
	Mode Mode
	// PrometheusURL is the server's base URL (PromQL mode, and replicasQuery).
	PrometheusURL string
	// Query is latencyQuery: PromQL returning the P95 in seconds.
	Query string
	// MetricsURLs are the pods' metrics endpoints (scrape mode). A single URL
	// whose host is a DNS name is resolved at every scrape, one target per
	// A/AAAA record, as a headless Service gives.
	MetricsURLs []string
	// Histogram is the histogram family name, without _bucket.
	Histogram string
	// Window is the span of the scraped quantile (latencyWindow).
	Window time.Duration
	// Target is the P95 above which the component asks for more replicas.
	Target time.Duration
	// Timeout bounds each call to Prometheus or a pod.
	Timeout time.Duration
	// ReplicasQuery is PromQL for the current replicas; empty: not set.
	ReplicasQuery string
	// Auth applies to the requests to PrometheusURL.
	Auth Auth
}

// keys holds every metadata key this package reads; any of them present makes
// the latency component configured.
var keys = append([]string{
	"prometheusURL", "latencyQuery", "metricsURLs", "latencyHistogram", "latencyWindow",
	"latencyTarget", "latencyTimeout", "replicasQuery",
}, authKeys...)

// Keys returns every metadata key ParseConfig reads (xFromEnv forms implied).
func Keys() []string { return append([]string(nil), keys...) }

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// ParseConfig reads the latency keys from metadata. It returns (nil, nil)
// when no latency key is present. hasKubeLookup says whether the current
// replicas can come from the Kubernetes API (in cluster) or from a
// --current-replicas override; without it replicasQuery is required. Errors
// are *meta.Error. When m is read for a replay (meta.Map.Replay) no address
// is required or checked and no credential is read: the Config then says
// which mode and target the metadata asks for, and nothing to connect to.
func ParseConfig(m *meta.Map, hasKubeLookup bool) (*Config, error) {
	if !anyKey(m) {
		return nil, nil
	}
	c := &Config{}
	promURL, hasProm, err := m.FromEnv("prometheusURL", true)
	if err != nil {
		return nil, err
	}
	c.Query = m.String("latencyQuery", "")
	c.MetricsURLs = m.List("metricsURLs", nil)
	c.Histogram = m.String("latencyHistogram", "")
	c.ReplicasQuery = m.String("replicasQuery", "")

	replay := m.Replay()
	if hasProm && !replay {
		if c.PrometheusURL, err = checkPrometheusURL(promURL); err != nil {
			return nil, err
		}
	}
	if err := c.pickMode(hasProm, replay); err != nil {
		return nil, err
	}
	if err := c.checkHistogram(replay); err != nil {
		return nil, err
	}
	if err := c.parseDurations(m); err != nil {
		return nil, err
	}
	if replay {
		m.Skip(authKeys...)
		return c, nil
	}
	if err := c.parseAccess(m, hasProm, hasKubeLookup); err != nil {
		return nil, err
	}
	return c, nil
}

// anyKey reports whether any latency key is present, itself or its
// FromEnv form.
func anyKey(m *meta.Map) bool {
	present := false
	for _, k := range keys {
		_, ok := m.Lookup(k)
		_, eok := m.Lookup(k + "FromEnv")
		present = present || ok || eok
	}
	return present
}

// pickMode sets the Mode from which keys are there: latencyQuery is
// PromQL, metricsURLs a direct scrape, never both. A replay needs neither.
func (c *Config) pickMode(hasProm, replay bool) error {
	switch {
	case c.Query != "" && len(c.MetricsURLs) > 0:
		return &meta.Error{Key: "metricsURLs", Value: redactList(c.MetricsURLs), Allowed: `not together with "latencyQuery": choose PromQL or a direct scrape`}
	case c.Query != "":
		if !hasProm && !replay {
			return &meta.Error{Key: "prometheusURL", Allowed: `required with "latencyQuery": the Prometheus base URL, such as http://prometheus:9090`}
		}
		c.Mode = ModePromQL
	case len(c.MetricsURLs) > 0:
		if c.Histogram == "" {
			return &meta.Error{Key: "latencyHistogram", Allowed: `required with "metricsURLs": the histogram family name, such as http_request_duration_seconds`}
		}
		for _, u := range c.MetricsURLs {
			if err := checkMetricsURL(u); err != nil && !replay {
				return err
			}
		}
		c.Mode = ModeScrape
	case c.Histogram != "" && !replay:
		return &meta.Error{Key: "metricsURLs", Allowed: `required with "latencyHistogram": a comma list of the pods' metrics URLs, or one URL whose DNS name lists the pods`}
	case replay:
		// Any latency key configures the component; the trace has the P95.
	default:
		return &meta.Error{Key: "latencyQuery", Allowed: `required for latency: set "prometheusURL" + "latencyQuery", or "metricsURLs" + "latencyHistogram"`}
	}
	return nil
}

// checkHistogram accepts latencyHistogram in scrape mode only, as a
// family name.
func (c *Config) checkHistogram(replay bool) error {
	if c.Histogram == "" {
		return nil
	}
	if c.Mode != ModeScrape && !replay {
		return &meta.Error{Key: "latencyHistogram", Value: c.Histogram, Allowed: `only with "metricsURLs" (in PromQL mode the query names the histogram)`}
	}
	if !metricName.MatchString(c.Histogram) || strings.HasSuffix(c.Histogram, "_bucket") {
		return &meta.Error{Key: "latencyHistogram", Value: c.Histogram, Allowed: "a metric family name without the _bucket suffix, such as http_request_duration_seconds"}
	}
	return nil
}

// parseDurations reads latencyWindow, latencyTarget and latencyTimeout.
func (c *Config) parseDurations(m *meta.Map) error {
	var err error
	if c.Window, err = m.Duration("latencyWindow", DefaultWindow, false); err != nil {
		return err
	}
	if c.Target, err = m.Duration("latencyTarget", DefaultTarget, false); err != nil {
		return err
	}
	c.Timeout, err = m.Duration("latencyTimeout", DefaultTimeout, false)
	return err
}

// parseAccess checks where the current replicas come from and reads the
// Prometheus credentials, which need a prometheusURL to apply to.
func (c *Config) parseAccess(m *meta.Map, hasProm, hasKubeLookup bool) error {
	if c.ReplicasQuery != "" && !hasProm {
		return &meta.Error{Key: "prometheusURL", Allowed: `required with "replicasQuery": the Prometheus that answers it`}
	}
	if c.ReplicasQuery == "" && !hasKubeLookup {
		return &meta.Error{Key: "replicasQuery", Allowed: "required for latency outside a cluster without --current-replicas: PromQL returning the scale target's current replicas, such as kube_deployment_status_replicas{deployment=\"montage-api\"}"}
	}
	var err error
	if c.Auth, err = parseAuth(m); err != nil {
		return err
	}
	if !hasProm && c.Auth.String() != "none" {
		return &meta.Error{Key: "prometheusURL", Allowed: "required when Prometheus auth keys are set (they apply to Prometheus only)"}
	}
	return nil
}

// checkURL accepts an http(s) URL with a host; its error shows the value
// redacted, as every URL-valued key's.
func checkURL(key, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &meta.Error{Key: key, Value: meta.Redact(v), Allowed: "an http:// or https:// URL with a host"}
	}
	return u, nil
}

// prometheusURLAllowed says what prometheusURL may be.
const prometheusURLAllowed = "the Prometheus server's base URL: http(s)://host[:port] and an optional path prefix such as /prometheus (the scaler appends /api/v1/query), without a query string, fragment, %-escape or . or .. segment"

// checkPrometheusURL accepts the server's base URL, to which the API path
// is appended: a query string or a fragment would swallow that path and
// send the request wherever the rest points, and an escape or a dot
// segment would let the path mean something else to the server than here.
// It returns the base without a trailing slash.
func checkPrometheusURL(v string) (string, error) {
	u, err := checkURL("prometheusURL", v)
	if err != nil {
		return "", err
	}
	bad := func(allowed string) error {
		return &meta.Error{Key: "prometheusURL", Value: meta.Redact(v), Allowed: allowed}
	}
	p := u.EscapedPath()
	if strings.ContainsAny(v, "?#") || strings.Contains(p, "%") {
		return "", bad(prometheusURLAllowed)
	}
	if trimmed := strings.Trim(p, "/"); trimmed != "" {
		for seg := range strings.SplitSeq(trimmed, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return "", bad(prometheusURLAllowed)
			}
		}
	}
	if strings.HasSuffix(strings.TrimSuffix(p, "/"), "/api/v1") || strings.Contains(p, "/api/v1/") {
		return "", bad("the server's base URL without /api/v1/…: the scaler appends /api/v1/query")
	}
	return strings.TrimRight(v, "/"), nil
}

// checkMetricsURL accepts a pod's metrics URL, used as given: parameters
// are allowed (exporters take some), a fragment is not (never sent, so
// never meant).
func checkMetricsURL(v string) error {
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(v, "#") {
		return &meta.Error{Key: "metricsURLs", Value: meta.Redact(v), Allowed: "an http:// or https:// URL with a host and no fragment"}
	}
	return nil
}

// UpstreamKey identifies what the P95 is read from, secrets included,
// hashed so that map keys hold no credentials: two configs with the same
// key can share one poller.
func (c *Config) UpstreamKey() string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	field(string(c.Mode))
	field(c.PrometheusURL)
	field(c.Query)
	field(strings.Join(c.MetricsURLs, ","))
	field(c.Histogram)
	field(c.Window.String())
	field(c.Target.String())
	field(c.Timeout.String())
	field(c.ReplicasQuery)
	field(c.Auth.BearerToken)
	field(c.Auth.Username)
	field(c.Auth.Password)
	for _, kv := range c.Auth.Headers {
		field(kv[0])
		field(kv[1])
	}
	field(string(c.Auth.CA))
	field(string(c.Auth.ClientCert))
	field(string(c.Auth.ClientKey))
	return hex.EncodeToString(h.Sum(nil))
}
