package prom

import (
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

// Component is the latency component's whole descriptor: its pure half and
// the Hub that reads Prometheus or the pods (one line in package
// components' table).
var Component = source.Component{Component: latency.Component, NewHub: newSourceHub}

func newSourceHub(o source.Options) source.Hub {
	return sourceHub{NewHub(HubOptions{Now: o.Now, Logger: o.LoggerOf(latency.Name), OnPoll: o.ReadHook(latency.Name),
		Interval: o.LatencyInterval, Replicas: o.Replicas, Policy: o.Policy})}
}

// sourceHub is a Hub as a source.Set holds it.
type sourceHub struct{ *Hub }

func (h sourceHub) Source(r source.Request) registry.Source {
	return source.Of(latency.Component, h.Watch(r.Namespace, r.Name, r.Config.(*latency.Config)), latency.Opinion)
}
