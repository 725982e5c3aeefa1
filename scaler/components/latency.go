package components

import (
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

var latencyComponent = source.Component{Component: latency.Component, NewHub: newLatencyHub}

type latencyHub struct{ *latency.Hub }

func newLatencyHub(o source.Options) source.Hub {
	return latencyHub{latency.NewHub(latency.HubOptions{Now: o.Now, Logger: o.LoggerOf(latency.Name), OnPoll: o.ReadHook(latency.Name),
		Interval: o.LatencyInterval, Replicas: o.Replicas, Policy: o.Policy})}
}

func (h latencyHub) Source(r source.Request) registry.Source {
	return source.Of(latency.Component, h.Watch(r.Namespace, r.Name, r.Config.(*latency.Config)), latency.Opinion)
}
