package prom

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"time"

	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

// Component is the latency component's whole descriptor: its pure half and
// the Hub that reads Prometheus or the pods (one line in package
// components' table).
var Component = source.Component{Component: latency.Component, Flags: flags, NewHub: newSourceHub, CheckAddresses: checkAddresses}

// Tuning is the latency component's own settings (serve's flag; check sets
// it to read twice a window apart).
type Tuning struct {
	// Interval is how often each Prometheus query or set of pods is read.
	Interval time.Duration
}

func flags(fs *flag.FlagSet) source.Tuning {
	t := &Tuning{}
	fs.DurationVar(&t.Interval, "latency-interval", 15*time.Second, "how often each Prometheus query or set of pods is read")
	return t
}

func newSourceHub(o source.Options, tuning source.Tuning) source.Hub {
	t, _ := tuning.(*Tuning)
	if t == nil {
		t = &Tuning{} // the Hub's defaults
	}
	return sourceHub{NewHub(HubOptions{Now: o.Now, Logger: o.LoggerOf(latency.Name), OnPoll: o.UpstreamHook(latency.Name),
		Interval: t.Interval, Replicas: o.Replicas, Policy: o.Policy})}
}

// sourceHub is a Hub as a source.Set holds it.
type sourceHub struct{ *Hub }

func (h sourceHub) Source(r source.Request) registry.Source {
	return source.Of(latency.Component, h.Watch(r.Namespace, r.Name, r.Config.(*latency.Config)), latency.Opinion)
}

// checkAddresses refuses a prometheusURL or metricsURLs entry the policy
// refuses; one that does not resolve here is the source's to report.
func checkAddresses(ctx context.Context, cfg component.Config, o source.Options) error {
	c := cfg.(*latency.Config)
	check := func(key, raw string) error {
		u, err := url.Parse(raw)
		if err != nil {
			return nil // ParseConfig accepted it: unreachable
		}
		if err := o.Policy.CheckURL(ctx, u); errors.Is(err, netpolicy.ErrRefused) {
			return fmt.Errorf("%s %s: %w", key, meta.Redact(raw), err)
		}
		return nil
	}
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
	return nil
}
