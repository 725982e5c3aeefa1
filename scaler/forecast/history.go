package forecast

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Bucket is the history's resolution and the forecast's slot length.
const Bucket = 5 * time.Minute

// Week is the habit's period.
const Week = 7 * 24 * time.Hour

const (
	bucketSec = int64(Bucket / time.Second)
	weekSec   = int64(Week / time.Second)
	// quantile and decay shape the estimate: a high weighted percentile of
	// the slot's past weeks, recent weeks weighing more.
	quantile = 0.8
	decay    = 0.75
)

// Demand is one bucket of the history, in replicas, by kind (KindDemand,
// KindLatency, and KindLegacyAsk from histories written before KindDemand).
// A kind absent from the map had no fresh reading.
type Demand map[string]float64

// Total is the bucket's demand: the largest of its kinds, as decide.Decide
// folds the components' asks, a legacy celery ask left out when the bucket
// has a KindDemand. ok is false when the map is empty.
func (d Demand) Total() (v float64, ok bool) {
	v = math.Inf(-1)
	_, demand := d[KindDemand]
	for k, x := range d {
		if k == KindLegacyAsk && demand {
			continue
		}
		v = math.Max(v, x)
	}
	return v, len(d) > 0
}

// Legacy says the bucket's celery part is a legacy ask (backlog included).
func (d Demand) Legacy() bool {
	_, legacy := d[KindLegacyAsk]
	_, demand := d[KindDemand]
	return legacy && !demand
}

// merge keeps the max per component.
func (d Demand) merge(o Demand) {
	for k, v := range o {
		if cur, ok := d[k]; !ok || v > cur {
			d[k] = v
		}
	}
}

// BucketOf is the start of the bucket holding t.
func BucketOf(t time.Time) time.Time {
	s := t.Unix()
	return time.Unix(s-mod(s, bucketSec), 0).UTC()
}

func mod(a, b int64) int64 { return ((a % b) + b) % b }

// History is a ScaledObject's observed demand per bucket. It is not safe for
// concurrent writes; a snapshot shared by readers must not be written.
type History struct {
	buckets map[int64]Demand // by bucket start, unix seconds
	oldest  int64            // meaningless while buckets is empty
	newest  int64
}

// NewHistory returns an empty History.
func NewHistory() *History { return &History{buckets: map[int64]Demand{}} }

// Observe merges d into the bucket holding at (max per component).
func (h *History) Observe(at time.Time, d Demand) {
	if len(d) == 0 {
		return
	}
	b := BucketOf(at).Unix()
	cur, ok := h.buckets[b]
	if !ok {
		if len(h.buckets) == 0 || b < h.oldest {
			h.oldest = b
		}
		if len(h.buckets) == 0 || b > h.newest {
			h.newest = b
		}
		cur = Demand{}
		h.buckets[b] = cur
	}
	cur.merge(d)
}

// Len is the number of observed buckets.
func (h *History) Len() int { return len(h.buckets) }

// LegacyBuckets counts the buckets whose celery part is a legacy ask
// (written before the history recorded demand); they age out with the
// retention.
func (h *History) LegacyBuckets() int {
	n := 0
	for _, d := range h.buckets {
		if d.Legacy() {
			n++
		}
	}
	return n
}

// Demand returns the bucket holding at, and whether it was observed.
func (h *History) Demand(at time.Time) (Demand, bool) {
	d, ok := h.buckets[BucketOf(at).Unix()]
	return d, ok
}

func (h *History) total(b int64) (float64, bool) {
	d, ok := h.buckets[b]
	if !ok {
		return 0, false
	}
	return d.Total()
}

// Oldest is the start of the oldest observed bucket.
func (h *History) Oldest() (time.Time, bool) {
	if len(h.buckets) == 0 {
		return time.Time{}, false
	}
	return time.Unix(h.oldest, 0).UTC(), true
}

// Depth is how many weeks of history lie before now.
func (h *History) Depth(now time.Time) float64 {
	o, ok := h.Oldest()
	if !ok || !o.Before(now) {
		return 0
	}
	return now.Sub(o).Hours() / Week.Hours()
}

// Params shape the estimate and its guards.
type Params struct {
	// Weeks of history used (the retention).
	Weeks int
	// LeadTime: the forecast at t is for t+LeadTime.
	LeadTime time.Duration
	// MinWeeks of depth below which the forecast is silent.
	MinWeeks float64
	// MaxError is the relative error last week above which it backs off.
	MaxError float64
}

// Estimate is the usual demand of the slot holding target: a weighted 80th
// percentile of the same slot in the last p.Weeks weeks (weights 0.75^(k-1)
// for k weeks back), capped at the second largest of them so that a single
// odd week is never taken for a habit. ok is false with under two weeks
// observed; samples counts them.
func (h *History) Estimate(target time.Time, weeks int) (v float64, samples int, ok bool) {
	b := BucketOf(target).Unix()
	type wv struct{ v, w float64 }
	var vs []wv
	w := 1.0
	for k := 1; k <= weeks; k++ {
		if x, ok := h.total(b - int64(k)*weekSec); ok {
			vs = append(vs, wv{x, w})
		}
		w *= decay
	}
	if len(vs) < 2 {
		return 0, len(vs), false
	}
	slices.SortFunc(vs, func(a, b wv) int { return cmp.Compare(a.v, b.v) })
	total := 0.0
	for _, x := range vs {
		total += x.w
	}
	acc := 0.0
	for _, x := range vs {
		acc += x.w
		if acc >= quantile*total-1e-12 {
			v = x.v
			break
		}
	}
	return math.Min(v, vs[len(vs)-2].v), len(vs), true
}

// Errors compares the estimates with the observed demand for every observed
// bucket in [from, to) whose history was at least p.MinWeeks deep then.
// It returns nil when no bucket qualifies.
func (h *History) Errors(from, to time.Time, p Params) *decide.ForecastError {
	return h.errorsOf(from, to, p, func(b int64) (float64, bool) {
		v, _, ok := h.Estimate(time.Unix(b, 0), p.Weeks)
		return v, ok
	})
}

// NaiveErrors is Errors for the seasonal naive forecast (last week's same
// slot), the baseline the estimator must beat.
func (h *History) NaiveErrors(from, to time.Time, p Params) *decide.ForecastError {
	return h.errorsOf(from, to, p, func(b int64) (float64, bool) { return h.total(b - weekSec) })
}

func (h *History) errorsOf(from, to time.Time, p Params, estimate func(b int64) (float64, bool)) *decide.ForecastError {
	oldest, ok := h.Oldest()
	if !ok {
		return nil
	}
	minDepth := int64(p.MinWeeks * float64(weekSec))
	var e decide.ForecastError
	var sumAbs, sumErr, sumActual float64
	for b := BucketOf(from).Unix(); b < to.Unix(); b += bucketSec {
		if b-oldest.Unix() < minDepth {
			continue
		}
		actual, ok := h.total(b)
		if !ok {
			continue
		}
		est, ok := estimate(b)
		if !ok {
			continue
		}
		e.Buckets++
		d := est - actual
		sumErr += d
		sumAbs += math.Abs(d)
		sumActual += actual
		if math.Ceil(est) < math.Ceil(actual) {
			e.UnderMinutes += Bucket.Minutes()
		}
		if d > 0 {
			e.ExtraPodHours += d * Bucket.Hours()
		}
	}
	if e.Buckets == 0 {
		return nil
	}
	n := float64(e.Buckets)
	e.MeanError, e.MeanAbsError = sumErr/n, sumAbs/n
	e.Relative = sumAbs / math.Max(sumActual, 1)
	return &e
}

// Evaluate is the forecast's evidence at now: the estimate of the slot
// p.LeadTime ahead, the history's depth and last week's error.
func Evaluate(h *History, now time.Time, mode string, p Params) decide.ForecastEvidence {
	e := Evidence(h, now, mode, p)
	e.LastWeek = h.Errors(now.Add(-Week), now, p)
	return e
}

// Evidence is Evaluate without last week's error, for callers that refresh
// that (a week of estimates) less often than the slot.
func Evidence(h *History, now time.Time, mode string, p Params) decide.ForecastEvidence {
	target := now.Add(p.LeadTime)
	e := decide.ForecastEvidence{
		Mode:         mode,
		Target:       target.UTC(),
		Slot:         SlotName(target),
		HistoryWeeks: math.Round(h.Depth(now)*100) / 100,
		MinWeeks:     p.MinWeeks,
		MaxError:     p.MaxError,
	}
	if v, n, ok := h.Estimate(target, p.Weeks); ok {
		e.Estimate = &v
		e.Samples = n
	} else {
		e.Samples = n
	}
	return e
}

// SlotName names the slot of the week holding t ("Tue 18:05 UTC").
func SlotName(t time.Time) string { return BucketOf(t).Format("Mon 15:04") + " UTC" }
