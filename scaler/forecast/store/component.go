package store

import (
	"flag"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

// Component is the forecast's whole descriptor: its pure half and the Hub
// that keeps its histories (one line in package components' table).
var Component = source.Component{Component: forecast.Component, Flags: flags, NewHub: newSourceHub}

// Tuning is the forecast's own settings (serve's flag).
type Tuning struct {
	// Sample is how often the recorder samples the other components.
	Sample time.Duration
}

func flags(fs *flag.FlagSet) source.Tuning {
	t := &Tuning{}
	fs.DurationVar(&t.Sample, "forecast-sample-interval", 15*time.Second, "how often the forecast samples the broker's counts and the latency ask (its history keeps each 5-minute bucket's demand)")
	return t
}

var (
	replicasDesc = prometheus.NewDesc("montage_scaler_forecast_replicas",
		"Replicas the forecast expects lead time ahead, in dry-run too (absent: the forecast is silent).",
		[]string{"namespace", "scaledobject", "mode"}, nil)
	nextHourDesc = prometheus.NewDesc("montage_scaler_forecast_next_hour_replicas",
		"The most the forecast would ask for over the next hour, in dry-run too (absent: it would be silent).",
		[]string{"namespace", "scaledobject", "mode"}, nil)
)

// sourceHub is a Hub as a source.Set holds it, and the forecast's
// collector: each watched ScaledObject's estimate and the most it would
// ask for over the next hour, with its mode (a dry-run shows what it would
// do), built at scrape time from its latest reading.
type sourceHub struct {
	*Hub
	now     func() time.Time
	objects source.Objects
}

func newSourceHub(o source.Options, tuning source.Tuning) source.Hub {
	t, _ := tuning.(*Tuning)
	if t == nil {
		t = &Tuning{} // the Hub's defaults
	}
	h := &sourceHub{now: o.Now, Hub: NewHub(HubOptions{Now: o.Now, Logger: o.LoggerOf(forecast.Name), OnUpstream: o.UpstreamHook(forecast.Name),
		DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Sample: t.Sample, ReadOnly: o.ReadOnly, Policy: o.Policy})}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// Source is the ScaledObject's history and its recorder, which observes the
// readings of the components before it (forecast.Config.Observe).
func (h *sourceHub) Source(r source.Request) registry.Source {
	c := r.Config.(*forecast.Config)
	sample := func(now time.Time) forecast.Sample { return c.Observe(now, r.Policy.StaleAfter, r.Observed(now)) }
	return h.objects.Track(r, source.Of(forecast.Component, h.Watch(c, r.Namespace, r.Name, sample), forecast.NewOpinion(c).Of))
}

func (h *sourceHub) Describe(ch chan<- *prometheus.Desc) {
	ch <- replicasDesc
	ch <- nextHourDesc
}

func (h *sourceHub) Collect(ch chan<- prometheus.Metric) {
	for _, o := range h.objects.Latest(h.now()) {
		d, ok := o.Reading.Opinion.Detail.(decide.ForecastDetail)
		if !o.Fresh || !ok {
			continue
		}
		if v := o.Reading.Opinion.Desired; v != nil && decide.CheckReplicas(*v) == nil {
			ch <- prometheus.MustNewConstMetric(replicasDesc, prometheus.GaugeValue, *v, o.Namespace, o.Name, d.Mode)
		}
		if v := d.NextHour; v != nil && decide.CheckReplicas(*v) == nil {
			ch <- prometheus.MustNewConstMetric(nextHourDesc, prometheus.GaugeValue, *v, o.Namespace, o.Name, d.Mode)
		}
	}
}
