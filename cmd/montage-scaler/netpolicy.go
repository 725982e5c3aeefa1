package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/source"
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
// laptop) is left for its source to report, as a failed read. Each
// component checks its own addresses (source.Component.CheckAddresses).
func checkAddresses(ctx context.Context, sp *spec.Spec, p *netpolicy.Policy, feeds calendar.Limits) error {
	o := source.Options{Policy: p, Calendar: feeds}
	for _, c := range components.Table() {
		if c.CheckAddresses == nil {
			continue
		}
		for _, part := range sp.Parts {
			if part.Component.Name != c.Name {
				continue
			}
			if err := c.CheckAddresses(ctx, part.Config, o); err != nil {
				return err
			}
		}
	}
	return nil
}
