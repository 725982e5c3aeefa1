package registrytest

import (
	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
)

// Table is the binary's components' pure halves, for tests that parse real
// metadata into the fakes (package components, the binary's table, builds
// on the registry).
func Table() []component.Component {
	return []component.Component{celery.Component, latency.Component, calendar.Component, forecast.Component}
}
