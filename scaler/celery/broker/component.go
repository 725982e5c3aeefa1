package broker

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

// Component is the celery component's whole descriptor: its pure half and
// the Hub that polls its brokers (one line in package components' table).
var Component = source.Component{Component: celery.Component, NewHub: newSourceHub, CheckAddresses: checkAddresses}

// sourceHub is a Hub as a source.Set holds it. It is the component's
// collector: the brokers' own metrics (queue-wait warnings) and, built at
// scrape time from each watched ScaledObject's latest reading, its task
// counts, queue waits and processed tasks.
type sourceHub struct {
	*Hub
	now     func() time.Time
	objects source.Objects
	series  objectMetrics
}

func newSourceHub(o source.Options) source.Hub {
	h := &sourceHub{now: o.Now, Hub: NewHub(HubOptions{Now: o.Now, Logger: o.LoggerOf(celery.Name), OnPoll: o.UpstreamHook(celery.Name),
		PollInterval: o.PollInterval, PollMaxBackoff: o.PollMaxBackoff,
		Redis: redisbroker.Options{DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Policy: o.Policy}})}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

func (h *sourceHub) Source(r source.Request) registry.Source {
	c := r.Config.(*celery.Config)
	return h.objects.Track(r, source.Of(celery.Component, h.Watch(c.Broker, c.Layout), c.Opinion))
}

func (h *sourceHub) Describe(ch chan<- *prometheus.Desc) {
	h.Collector().Describe(ch)
	h.series.Describe(ch)
}

func (h *sourceHub) Collect(ch chan<- prometheus.Metric) {
	h.Collector().Collect(ch)
	h.series.collect(h.objects.Latest(h.now()), ch)
}

// checkAddresses refuses a broker address the policy refuses; one that
// does not resolve here is the source's to report.
func checkAddresses(ctx context.Context, c component.Config, o source.Options) error {
	if err := CheckAddresses(ctx, c.(*celery.Config).Broker, o.Policy); errors.Is(err, netpolicy.ErrRefused) {
		return err
	}
	return nil
}
