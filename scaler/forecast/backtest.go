package forecast

import (
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// WeekResult is the forecast's error over one week of the history, beside
// the seasonal naive forecast's.
type WeekResult struct {
	From time.Time `json:"from"`
	// Error is nil when no bucket of the week had an estimate (under
	// MinWeeks of history then).
	Error *decide.ForecastError `json:"error"`
	// Naive is the seasonal naive forecast's error (last week's slot) over
	// the same week.
	Naive *decide.ForecastError `json:"naive"`
}

// BacktestReport replays a history: for every observed bucket, the estimate
// the forecast would have made then against the demand recorded.
type BacktestReport struct {
	// From and To span the history (To: the end of the newest bucket).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Zone is the zone of the slots of the week, whose calendar weeks the
	// report follows.
	Zone    string `json:"zone"`
	Buckets int    `json:"buckets"`
	// LegacyBuckets counts the buckets written before the history recorded
	// demand (the celery component's asks, backlog included).
	LegacyBuckets int          `json:"legacyBuckets"`
	Weeks         []WeekResult `json:"weeks"`
	// Total is over every week; nil when no bucket had an estimate.
	Total *decide.ForecastError `json:"total"`
	// Naive is the seasonal naive forecast (last week's same slot) over the
	// same span: the baseline a seasonal model has to beat.
	Naive *decide.ForecastError `json:"naive"`
}

// Backtest replays h week by week from its oldest bucket. It uses only
// what was known at each bucket: the estimate of a bucket reads the weeks
// before it, and buckets with under p.MinWeeks of history before them are
// not counted (the forecast is silent there).
func Backtest(h *History, p Params) BacktestReport {
	r := BacktestReport{Buckets: h.Len(), LegacyBuckets: h.LegacyBuckets(), Weeks: []WeekResult{}, Zone: p.zone().String()}
	if h.Len() == 0 {
		return r
	}
	r.From = time.Unix(h.oldest, 0).UTC()
	r.To = time.Unix(h.newest, 0).UTC().Add(Bucket)
	// Weeks of the zone's calendar: 7 days, 167 or 169 hours across a
	// daylight-saving change.
	for w := r.From; w.Before(r.To); {
		next := w.In(p.zone()).AddDate(0, 0, 7).UTC()
		end := minTime(next, r.To)
		r.Weeks = append(r.Weeks, WeekResult{From: w, Error: h.Errors(w, end, p), Naive: h.NaiveErrors(w, end, p)})
		w = next
	}
	r.Total = h.Errors(r.From, r.To, p)
	r.Naive = h.NaiveErrors(r.From, r.To, p)
	return r
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
