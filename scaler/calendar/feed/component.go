package feed

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

// Component is the calendar component's whole descriptor: its pure half and
// the Hub that fetches its feeds (one line in package components' table).
var Component = source.Component{Component: calendar.Component, NewHub: newSourceHub, CheckAddresses: checkAddresses}

// sourceHub is a Hub as a source.Set holds it; it exports the Hub's own
// metrics.
type sourceHub struct{ *Hub }

func newSourceHub(o source.Options, _ source.Tuning) source.Hub {
	return sourceHub{NewHub(HubOptions{Now: o.Now, Logger: o.LoggerOf(calendar.Name), OnFetch: o.UpstreamHook(calendar.Name),
		Limits: o.Calendar})}
}

// Source is the feed's watch. A feed that has never been read is no
// opinion, never a reason to withhold the others' decision (the
// component is Optional); its copy is then kept forever.
func (h sourceHub) Source(r source.Request) registry.Source {
	c := r.Config.(*calendar.Config)
	return source.Of(calendar.Component, h.Watch(c), calendar.NewOpinion(c).Of)
}

// Describe and Collect export the feeds' own metrics.
func (h sourceHub) Describe(ch chan<- *prometheus.Desc) { h.Collector().Describe(ch) }
func (h sourceHub) Collect(ch chan<- prometheus.Metric) { h.Collector().Collect(ch) }

// checkAddresses refuses a feed URL the feeds' stricter policy refuses.
func checkAddresses(ctx context.Context, c component.Config, o source.Options) error {
	return CheckURL(ctx, c.(*calendar.Config).URL, o.Calendar)
}
