package store

import (
	"time"

	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

// Component is the forecast's whole descriptor: its pure half and the Hub
// that keeps its histories (one line in package components' table).
var Component = source.Component{Component: forecast.Component, NewHub: newSourceHub}

func newSourceHub(o source.Options) source.Hub {
	return sourceHub{NewHub(HubOptions{Now: o.Now, Logger: o.LoggerOf(forecast.Name), OnRead: o.ReadHook(forecast.Name),
		DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Sample: o.ForecastSample, ReadOnly: o.ReadOnly, Policy: o.Policy})}
}

// sourceHub is a Hub as a source.Set holds it.
type sourceHub struct{ *Hub }

// Source is the ScaledObject's history and its recorder, which observes the
// readings of the components before it (forecast.Config.Observe).
func (h sourceHub) Source(r source.Request) registry.Source {
	c := r.Config.(*forecast.Config)
	sample := func(now time.Time) forecast.Sample { return c.Observe(now, r.Policy.StaleAfter, r.Observed(now)) }
	return source.Of(forecast.Component, h.Watch(c, r.Namespace, r.Name, sample), forecast.NewOpinion(c).Of)
}
