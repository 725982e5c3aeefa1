package prom_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/latency/prom"
	"github.com/montage/montage-scaler/scaler/netpolicy"
)

// names answers the policy's lookups from a table.
type names map[string][]string

func (n names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range n[host] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// pods answers the scrape's lookup of a headless Service.
type pods map[string][]string

func (p pods) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	var out []net.IPAddr
	for _, s := range p[host] {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

// noNetwork records what the policy let through to be dialled, and
// dials nothing: no packet leaves, whatever the code under test does.
type noNetwork struct {
	mu   sync.Mutex
	seen []string
}

func (n *noNetwork) dial(_ context.Context, _, address string) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seen = append(n.seen, address)
	return nil, errors.New("test: no network")
}

func (n *noNetwork) dialled() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Sorted(slices.Values(n.seen))
}

// prometheusURL and metricsURLs on link-local or cloud-metadata addresses
// are refused before anything is dialled, naming the key and the flag that
// allows them; a rule (--allow-host) lets them through.
func TestLinkLocalAndMetadataUpstreamsAreRefusedBeforeDialling(t *testing.T) {
	resolver := names{"metadata.google.internal": {"169.254.169.254"}, "prometheus.monitoring": {"10.96.0.9"}}
	headless := pods{"api-headless.montage.svc": {"10.0.0.5", "169.254.169.254"}}
	tests := []struct {
		name    string
		md      map[string]string
		allow   []string
		want    string
		dialled []string
	}{
		{name: "a Prometheus whose name resolves to cloud metadata",
			md:   map[string]string{"prometheusURL": "http://metadata.google.internal/computeMetadata/v1", "latencyQuery": "q"},
			want: "latency: prometheusURL http://metadata.google.internal/computeMetadata/v1: refused address: metadata.google.internal resolves to cloud-metadata address 169.254.169.254, not dialled (allow it with --allow-host)"},
		{name: "a Prometheus on a link-local literal",
			md:   map[string]string{"prometheusURL": "http://169.254.20.10:9090", "latencyQuery": "q"},
			want: "latency: prometheusURL http://169.254.20.10:9090: refused address: 169.254.20.10 is a link-local address, not dialled (allow it with --allow-host)"},
		{name: "a pod list with the AWS IPv6 metadata address",
			md: map[string]string{"metricsURLs": "http://[fd00:ec2::254]/latest/meta-data", "latencyHistogram": "h"},
			want: "latency: scraping h: every pod failed: http://[fd00:ec2::254]/latest/meta-data: metricsURLs: refused address: " +
				"fd00:ec2::254 is a cloud-metadata address, not dialled (allow it with --allow-host)"},
		{name: "a headless Service answering with a metadata address: that pod is left out, the others read",
			md: map[string]string{"metricsURLs": "http://api-headless.montage.svc:8000/metrics", "latencyHistogram": "h"},
			want: "latency: scraping h: every pod failed: http://10.0.0.5:8000/metrics: test: no network; http://169.254.169.254:8000/metrics: metricsURLs: refused address: " +
				"169.254.169.254 is a cloud-metadata address, not dialled (allow it with --allow-host)",
			dialled: []string{"10.0.0.5:8000"}},
		{name: "a private Prometheus is dialled at its checked address",
			md:   map[string]string{"prometheusURL": "http://prometheus.monitoring:9090", "latencyQuery": "q"},
			want: "latency: prometheus http://prometheus.monitoring:9090: test: no network", dialled: []string{"10.96.0.9:9090"}},
		{name: "--allow-host opens a link-local Prometheus",
			md:    map[string]string{"prometheusURL": "http://169.254.20.10:9090", "latencyQuery": "q"},
			allow: []string{"169.254.20.10"},
			want:  "latency: prometheus http://169.254.20.10:9090: test: no network", dialled: []string{"169.254.20.10:9090"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rules []netpolicy.Rule
			for _, a := range tt.allow {
				r, err := netpolicy.ParseRule(a)
				if err != nil {
					t.Fatal(err)
				}
				rules = append(rules, r)
			}
			var nn noNetwork
			p := netpolicy.Upstreams(rules)
			p.Resolver, p.Dial = resolver, nn.dial
			hub := prom.NewHub(prom.HubOptions{Interval: time.Hour, Replicas: latency.FixedReplicas(1), Policy: p, Resolver: headless})
			t.Cleanup(hub.Close)
			w := hub.Watch("ns", "api", parse(t, tt.md, true))
			defer w.Close()
			s, err := w.First(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if s.Err == nil || s.Err.Error() != tt.want {
				t.Errorf("error\n got %v\nwant %s", s.Err, tt.want)
			}
			if strings.HasPrefix(tt.want, "latency: prometheusURL") && !errors.Is(s.Err, netpolicy.ErrRefused) {
				t.Errorf("errors.Is(%v, netpolicy.ErrRefused) = false", s.Err)
			}
			if got := nn.dialled(); !slices.Equal(got, tt.dialled) {
				t.Errorf("dialled %q, want %q", got, tt.dialled)
			}
		})
	}
}
