package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/feed"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/spec"
)

// netFlags is the address policy's one flag, --allow-host, shared by every
// command that reads a source.
type netFlags struct {
	allow []string
	rules []netpolicy.Rule
}

// allowHostFlag is the repeatable --allow-host.
type allowHostFlag struct{ n *netFlags }

func (a allowHostFlag) String() string {
	if a.n == nil {
		return ""
	}
	return strings.Join(a.n.allow, ",")
}

// Set takes one value or a comma list, so that MONTAGE_SCALER_ALLOW_HOST
// can hold several.
func (a allowHostFlag) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		r, err := netpolicy.ParseRule(item)
		if err != nil {
			return fmt.Errorf("--allow-host %w", err)
		}
		a.n.allow = append(a.n.allow, strings.TrimSpace(item))
		a.n.rules = append(a.n.rules, r)
	}
	return nil
}

func (n *netFlags) register(fs *flag.FlagSet) {
	fs.Var(allowHostFlag{n}, "allow-host", "a host, host:port or CIDR that every URL-valued key (brokerURL, prometheusURL, metricsURLs, calendarURL) may reach whatever its address: link-local and cloud-metadata addresses need it (repeatable, or a comma list)")
}

// policy is the address policy of brokerURL, prometheusURL and metricsURLs.
func (n *netFlags) policy() *netpolicy.Policy { return netpolicy.Upstreams(n.rules) }

// calendar adds the --allow-host rules to the feeds' own.
func (n *netFlags) calendar(l calendar.Limits) calendar.Limits {
	l.AllowHosts = append(append([]string(nil), l.AllowHosts...), n.allow...)
	return l
}

// checkAddresses resolves every address sp names and refuses what the
// policy refuses, before any source is read: check exits 2 on it, as on
// bad metadata. serve checks the same when it dials. A broker or
// Prometheus name that does not resolve here (a cluster name, from a
// laptop) is left for its source to report, as a failed read.
func checkAddresses(ctx context.Context, sp *spec.Spec, p *netpolicy.Policy, feeds calendar.Limits) error {
	if cal, ok := spec.Find[*calendar.Config](sp); ok {
		if err := feed.CheckURL(ctx, cal.URL, feeds); err != nil {
			return err
		}
	}
	refused := func(err error) error {
		if errors.Is(err, netpolicy.ErrRefused) {
			return err
		}
		return nil
	}
	if cel, ok := spec.Find[*celery.Config](sp); ok {
		if err := refused(broker.CheckAddresses(ctx, cel.Broker, p)); err != nil {
			return err
		}
	}
	check := func(key, raw string) error {
		u, err := url.Parse(raw)
		if err != nil {
			return nil // ParseConfig accepted it: unreachable
		}
		if err := refused(p.CheckURL(ctx, u)); err != nil {
			return fmt.Errorf("%s %s: %w", key, meta.Redact(raw), err)
		}
		return nil
	}
	if c, ok := spec.Find[*latency.Config](sp); ok {
		if c.PrometheusURL != "" {
			if err := check("prometheusURL", c.PrometheusURL); err != nil {
				return err
			}
		}
		for _, raw := range c.MetricsURLs {
			if err := check("metricsURLs", raw); err != nil {
				return err
			}
		}
	}
	return nil
}
