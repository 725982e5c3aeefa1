package broker

import (
	"context"
	"errors"
	"flag"
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
var Component = source.Component{Component: celery.Component, Flags: flags, NewHub: newSourceHub, CheckAddresses: checkAddresses}

// Tuning is the celery component's own settings (serve's flags).
type Tuning struct {
	// PollInterval is how often each broker is polled.
	PollInterval time.Duration
	// PollMaxBackoff is the longest pause between the polls of a broker
	// whose polls fail.
	PollMaxBackoff time.Duration
}

func flags(fs *flag.FlagSet) source.Tuning {
	t := &Tuning{}
	fs.DurationVar(&t.PollInterval, "poll-interval", 250*time.Millisecond, "how often each broker is polled")
	fs.DurationVar(&t.PollMaxBackoff, "poll-max-backoff", 2*time.Second, "the longest pause between the polls of a broker whose polls fail (it doubles from --poll-interval); its recovery is seen within this plus a poll")
	return t
}

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

func newSourceHub(o source.Options, tuning source.Tuning) source.Hub {
	t, _ := tuning.(*Tuning)
	if t == nil {
		t = &Tuning{} // the Hub's defaults
	}
	h := &sourceHub{now: o.Now, Hub: NewHub(HubOptions{Now: o.Now, Logger: o.LoggerOf(celery.Name), OnPoll: o.UpstreamHook(celery.Name),
		PollInterval: t.PollInterval, PollMaxBackoff: t.PollMaxBackoff,
		Redis: redisbroker.Options{DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Policy: o.Policy}})}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

func (h *sourceHub) Source(r source.Request) registry.Source {
	c := r.Config.(*celery.Config)
	// Each watch measures its own flow (arrivals, service time, start-up)
	// for the wait-based ask.
	f := celery.NewFlow(c)
	return h.objects.Track(r, source.Of(celery.Component, newFlowView(h.Watch(c.Broker, c.Layout), f, h.now), f.Opinion))
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
