package components

import (
	"time"

	"github.com/montage/montage-scaler/scaler/forecast"
	forecaststore "github.com/montage/montage-scaler/scaler/forecast/store"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
)

var forecastComponent = source.Component{Component: forecast.Component, NewHub: newForecastHub}

type forecastHub struct{ *forecaststore.Hub }

func newForecastHub(o source.Options) source.Hub {
	return forecastHub{forecaststore.NewHub(forecaststore.HubOptions{Now: o.Now, Logger: o.LoggerOf(forecast.Name), OnRead: o.ReadHook(forecast.Name),
		DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Sample: o.ForecastSample, ReadOnly: o.ReadOnly, Policy: o.Policy})}
}

// Source is the ScaledObject's history and its recorder, which observes the
// readings of the components before it.
func (h forecastHub) Source(r source.Request) registry.Source {
	c := r.Config.(*forecast.Config)
	sample := func(now time.Time) forecast.Sample { return c.Observe(now, r.Policy.StaleAfter, r.Observed(now)) }
	return source.Of(forecast.Component, h.Watch(c, r.Namespace, r.Name, sample), forecast.NewOpinion(c).Of)
}
