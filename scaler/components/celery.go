package components

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

var celeryComponent = source.Component{Component: celery.Component, NewHub: newCeleryHub}

type celeryHub struct{ *broker.Hub }

func newCeleryHub(o source.Options) source.Hub {
	return celeryHub{broker.NewHub(broker.HubOptions{Now: o.Now, Logger: o.LoggerOf(celery.Name), OnPoll: o.ReadHook(celery.Name),
		PollInterval: o.PollInterval, PollMaxBackoff: o.PollMaxBackoff, DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Policy: o.Policy})}
}

func (h celeryHub) Source(r source.Request) registry.Source {
	c := r.Config.(*celery.Config)
	return source.Of(celery.Component, h.Watch(c.Broker, c.Layout), c.Opinion)
}

// Describe and Collect export the brokers' own metrics.
func (h celeryHub) Describe(ch chan<- *prometheus.Desc) { h.Collector().Describe(ch) }
func (h celeryHub) Collect(ch chan<- prometheus.Metric) { h.Collector().Collect(ch) }
