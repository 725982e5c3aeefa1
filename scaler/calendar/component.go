package calendar

import (
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
)

// Name is the component's name.
const Name = "calendar"

// Component describes the calendar component: scheduled sessions from an
// iCalendar feed. A feed that fails when the scaler starts must not switch
// off queue and latency scaling (Optional), and an event is a future fact
// (NeverExpires).
var Component = component.Component{
	Name: Name,
	Keys: Keys(),
	Parse: func(m *meta.Map, c component.Context) (component.Config, error) {
		cfg, err := ParseConfig(m)
		if cfg == nil || err != nil {
			return nil, err
		}
		cfg.MaxReplicas = c.Policy.Max // a hint above maxReplicas is clamped, and said so
		return cfg, nil
	},
	Configures: "calendarURL (or calendarURLFromEnv)",
	Expiry:     component.NeverExpires,
	Optional:   true,
	Replay: func(_ component.Config, w component.World) (decide.Opinion, error) {
		return decide.CalendarOpinion(w.Now, w.Windows, 0), nil
	},
}
