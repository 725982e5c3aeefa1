package spec

import (
	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
)

// table is the binary's components' pure halves (package components
// builds on this package, so the tests name them here).
var table = []component.Component{celery.Component, latency.Component, calendar.Component, forecast.Component}

// The components' configs, as the tests read them.
func (s *Spec) Celery() *celery.Config     { c, _ := Find[*celery.Config](s); return c }
func (s *Spec) Latency() *latency.Config   { c, _ := Find[*latency.Config](s); return c }
func (s *Spec) Calendar() *calendar.Config { c, _ := Find[*calendar.Config](s); return c }
func (s *Spec) Forecast() *forecast.Config { c, _ := Find[*forecast.Config](s); return c }
