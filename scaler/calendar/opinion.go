package calendar

import (
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/decide"
)

// Opinion expands f over [now, now + Horizon] for c and returns the
// calendar component's opinion, the expansion's warnings included. An
// error means the feed could not be expanded (a limit was hit).
func (f *Feed) Opinion(c *Config, now time.Time) (decide.Opinion, error) {
	e, err := f.Expand(c, now, now.Add(Horizon))
	if err != nil {
		return decide.Opinion{}, err
	}
	o := decide.CalendarOpinion(now, ical.ForDecide(e.Windows), f.Age(now))
	o.Warnings = append(o.Warnings, e.Warnings...)
	return o, nil
}
