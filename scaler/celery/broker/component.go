package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

// Component is the celery component's whole descriptor: its pure half and
// the Hub that polls its brokers (one line in package components' table).
var Component = source.Component{Component: celery.Component, NewHub: newSourceHub}

// sourceHub is a Hub as a source.Set holds it; it exports the Hub's own
// metrics.
type sourceHub struct{ *Hub }

func newSourceHub(o source.Options) source.Hub {
	return sourceHub{NewHub(HubOptions{Now: o.Now, Logger: o.LoggerOf(celery.Name), OnPoll: o.ReadHook(celery.Name),
		PollInterval: o.PollInterval, PollMaxBackoff: o.PollMaxBackoff, DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Policy: o.Policy})}
}

func (h sourceHub) Source(r source.Request) registry.Source {
	c := r.Config.(*celery.Config)
	return source.Of(celery.Component, h.Watch(c.Broker, c.Layout), c.Opinion)
}

// Describe and Collect export the brokers' own metrics.
func (h sourceHub) Describe(ch chan<- *prometheus.Desc) { h.Collector().Describe(ch) }
func (h sourceHub) Collect(ch chan<- prometheus.Metric) { h.Collector().Collect(ch) }
