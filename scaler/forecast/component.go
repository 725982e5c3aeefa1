package forecast

import (
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/meta"
)

// Name is the component's name.
const Name = "forecast"

// Component describes the forecast: the usual demand of this slot of the
// week, learned from what the other components read. Weeks of history do
// not go stale in minutes, and the forecast only ever raises the decision:
// it never expires. It is no source of its own (it needs the celery
// component's broker) and the simulator replays it apart (simulate's
// backtest).
var Component = component.Component{
	Name: Name,
	Keys: Keys(),
	Parse: func(m *meta.Map, c component.Context) (component.Config, error) {
		cel, _ := component.Find[*celery.Config](c.Parsed)
		zone, err := calendarZone(m, c.Parsed)
		if err != nil {
			return nil, err
		}
		cfg, err := ParseConfig(m, cel, zone)
		if cfg == nil || err != nil {
			return nil, err
		}
		return cfg, nil
	},
	Expiry: component.NeverExpires,
}

// calendarZone is forecastTimezone's default: the parsed calendar's zone,
// else calendarTimezone's own value (a command that does not look at the
// calendar, or a trigger with no feed), else nil.
func calendarZone(m *meta.Map, parsed []component.Config) (*time.Location, error) {
	if cal, ok := component.Find[*calendar.Config](parsed); ok {
		return cal.Timezone, nil
	}
	return calendar.Timezone(m)
}
