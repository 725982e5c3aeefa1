package latency

import (
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/meta"
)

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		md   map[string]string
		kube bool
		want string
	}{
		{
			name: "A query without a Prometheus URL names prometheusURL",
			md:   map[string]string{"latencyQuery": "x"},
			want: `metadata "prometheusURL": required with "latencyQuery": the Prometheus base URL, such as http://prometheus:9090`,
		},
		{
			name: "No replica source outside a cluster names replicasQuery",
			md:   map[string]string{"prometheusURL": "http://p:9090", "latencyQuery": "x"},
			want: `metadata "replicasQuery": required for latency outside a cluster without --current-replicas: PromQL returning the scale target's current replicas, such as kube_deployment_status_replicas{deployment="montage-api"}`,
		},
		{
			name: "A URL that is not http names the key and hides the password",
			md:   map[string]string{"prometheusURL": "ftp://u:secret@p:9090", "latencyQuery": "x"},
			kube: true,
			want: `metadata "prometheusURL": bad value "ftp://u:xxxxx@p:9090": an http:// or https:// URL with a host`,
		},
		{
			name: "PromQL and scrape together are refused",
			md:   map[string]string{"prometheusURL": "http://p:9090", "latencyQuery": "x", "metricsURLs": "http://a/metrics"},
			kube: true,
			want: `metadata "metricsURLs": bad value "http://a/metrics": not together with "latencyQuery": choose PromQL or a direct scrape`,
		},
		{
			name: "Scrape without a histogram names latencyHistogram",
			md:   map[string]string{"metricsURLs": "http://a/metrics"},
			kube: true,
			want: `metadata "latencyHistogram": required with "metricsURLs": the histogram family name, such as http_request_duration_seconds`,
		},
		{
			name: "A histogram name with _bucket is refused",
			md:   map[string]string{"metricsURLs": "http://a/metrics", "latencyHistogram": "h_bucket"},
			kube: true,
			want: `metadata "latencyHistogram": bad value "h_bucket": a metric family name without the _bucket suffix, such as http_request_duration_seconds`,
		},
		{
			name: "A bad target names latencyTarget",
			md:   map[string]string{"prometheusURL": "http://p:9090", "latencyQuery": "x", "latencyTarget": "fast"},
			kube: true,
			want: `metadata "latencyTarget": bad value "fast": a positive Go duration such as 90s or 1h, or a bare number of seconds`,
		},
		{
			name: "Malformed headers are named and their value hidden",
			md:   map[string]string{"prometheusURL": "http://p:9090", "latencyQuery": "x", "prometheusHeaders": "X-Token"},
			kube: true,
			want: `metadata "prometheusHeaders": bad value "<redacted>": name=value pairs separated by commas, such as X-Scope-OrgID=montage,X-Token=abc`,
		},
		{
			name: "A CA that is not PEM is named and hidden",
			md:   map[string]string{"prometheusURL": "http://p:9090", "latencyQuery": "x", "prometheusCA": "hello"},
			kube: true,
			want: `metadata "prometheusCA": bad value "<redacted>": PEM certificates (-----BEGIN CERTIFICATE-----)`,
		},
		{
			name: "A client certificate without its key names prometheusClientKey",
			md:   map[string]string{"prometheusURL": "http://p:9090", "latencyQuery": "x", "prometheusClientCert": "pem"},
			kube: true,
			want: `metadata "prometheusClientKey": required with "prometheusClientCert": the PEM private key`,
		},
		{
			name: "A token set both ways is refused without showing it",
			md:   map[string]string{"prometheusURL": "http://p:9090", "latencyQuery": "x", "prometheusBearerToken": "s3cret", "prometheusBearerTokenFromEnv": "TOKEN"},
			kube: true,
			want: `metadata "prometheusBearerToken": bad value "<redacted>": set "prometheusBearerToken" or "prometheusBearerTokenFromEnv", not both`,
		},
		{
			name: "A password without a user names prometheusUsername",
			md:   map[string]string{"prometheusURL": "http://p:9090", "latencyQuery": "x", "prometheusPassword": "pw"},
			kube: true,
			want: `metadata "prometheusUsername": required with "prometheusPassword"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig(meta.New(tt.md), tt.kube)
			if err == nil {
				t.Fatalf("ParseConfig = %+v, want error %q", c, tt.want)
			}
			if !meta.IsError(err) {
				t.Errorf("error %T is not a *meta.Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "secret@") {
				t.Errorf("error shows a secret: %s", err)
			}
		})
	}
}

func TestParseConfigValid(t *testing.T) {
	t.Run("No latency key means no component", func(t *testing.T) {
		c, err := ParseConfig(meta.New(map[string]string{"brokerURL": "redis://x"}), false)
		if c != nil || err != nil {
			t.Fatalf("ParseConfig = %v, %v; want nil, nil", c, err)
		}
	})
	t.Run("PromQL with defaults", func(t *testing.T) {
		c, err := ParseConfig(meta.New(map[string]string{"prometheusURL": "http://p:9090/", "latencyQuery": "q", "replicasQuery": "r"}), false)
		if err != nil {
			t.Fatal(err)
		}
		if c.Mode != ModePromQL || c.PrometheusURL != "http://p:9090" || c.Query != "q" || c.ReplicasQuery != "r" ||
			c.Target != 80*time.Millisecond || c.Timeout != 3*time.Second || c.Window != time.Minute {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("Scrape with auth from FromEnv keys, which hold the container variables' values", func(t *testing.T) {
		m := meta.New(map[string]string{
			"metricsURLs": "http://a:8000/metrics, http://b:8000/metrics", "latencyHistogram": "h",
			"latencyWindow": "2m", "latencyTarget": "0.2", "latencyTimeout": "1s",
			"prometheusURL": "http://p:9090", "replicasQuery": "r",
			"prometheusBearerTokenFromEnv": "tkn", "prometheusHeadersFromEnv": "X-A=1, X-B = 2",
		})
		c, err := ParseConfig(m, false)
		if err != nil {
			t.Fatal(err)
		}
		if c.Mode != ModeScrape || len(c.MetricsURLs) != 2 || c.MetricsURLs[1] != "http://b:8000/metrics" ||
			c.Window != 2*time.Minute || c.Target != 200*time.Millisecond || c.Timeout != time.Second ||
			c.Auth.BearerToken != "tkn" || len(c.Auth.Headers) != 2 || c.Auth.Headers[1] != [2]string{"X-B", "2"} {
			t.Errorf("config = %+v", c)
		}
		if got := c.Auth.String(); got != "bearer+headers(X-A,X-B)" {
			t.Errorf("Auth.String() = %q", got)
		}
	})
}
