package latency

import (
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/quota"
)

// Claims are what a watch of c holds in the process (see package quota):
// its Prometheus endpoint (prometheusURL, for the P95 query or for
// replicasQuery) and each of its scrape targets (an entry of metricsURLs;
// a DNS name standing for the pods behind it is one target), each one
// distinct upstream however many watches share it.
func (c *Config) Claims() []quota.Claim {
	var out []quota.Claim
	if c.PrometheusURL != "" {
		out = append(out, quota.Claim{Kind: quota.PrometheusEndpoints, Key: c.PrometheusURL, Shown: meta.Redact(c.PrometheusURL)})
	}
	for _, u := range c.MetricsURLs {
		out = append(out, quota.Claim{Kind: quota.ScrapeTargets, Key: u, Shown: meta.Redact(u)})
	}
	return out
}
