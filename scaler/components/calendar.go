package components

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

var calendarComponent = source.Component{Component: calendar.Component, NewHub: newCalendarHub}

type calendarHub struct{ *calendar.Hub }

func newCalendarHub(o source.Options) source.Hub {
	return calendarHub{calendar.NewHub(calendar.HubOptions{Now: o.Now, Logger: o.LoggerOf(calendar.Name), OnFetch: o.ReadHook(calendar.Name),
		Limits: o.Calendar})}
}

// Source is the feed's watch. A feed that has never been read is no
// opinion, never a reason to withhold the others' decision (the
// component is Optional); its copy is then kept forever.
func (h calendarHub) Source(r source.Request) registry.Source {
	c := r.Config.(*calendar.Config)
	return source.Of(calendar.Component, h.Watch(c), calendar.NewOpinion(c).Of)
}

// Describe and Collect export the feeds' own metrics.
func (h calendarHub) Describe(ch chan<- *prometheus.Desc) { h.Collector().Describe(ch) }
func (h calendarHub) Collect(ch chan<- prometheus.Metric) { h.Collector().Collect(ch) }
