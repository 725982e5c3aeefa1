// Package components is the binary's table of components: one line per
// component, in the order explanations list them (a component may read the
// configs and readings of those before it: the forecast comes after the
// celery and latency components it learns from).
package components

import (
	"github.com/montage/montage-scaler/scaler/calendar/feed"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/component"
	forecaststore "github.com/montage/montage-scaler/scaler/forecast/store"
	"github.com/montage/montage-scaler/scaler/latency/prom"
	"github.com/montage/montage-scaler/scaler/source"
)

// Table returns every component the scaler knows.
func Table() []source.Component {
	return []source.Component{
		broker.Component,
		prom.Component,
		feed.Component,
		forecaststore.Component,
	}
}

// Pure returns the pure halves of Table, for spec and simulate.
func Pure() []component.Component { return source.Pure(Table()) }
