package forecast

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// quantile and decay shape the estimate: a high weighted percentile of the
// slot's past weeks, recent weeks weighing more.
const (
	quantile = 0.8
	decay    = 0.75
)

// Params shape the estimate and its guards.
type Params struct {
	// Weeks of history used (the retention).
	Weeks int
	// LeadTime: the forecast at t is for t+LeadTime.
	LeadTime time.Duration
	// MinWeeks of depth below which the forecast is silent.
	MinWeeks float64
	// MaxError is last week's relative over-forecast (ForecastError.Over)
	// above which it backs off.
	MaxError float64
	// Zone places the slots of the week; nil is UTC.
	Zone *time.Location
}

func (p Params) zone() *time.Location {
	if p.Zone == nil {
		return time.UTC
	}
	return p.Zone
}

// slotBuckets appends to buf the buckets k weeks before bucket b (unix
// seconds) at the same wall-clock time in loc: the same day of the week and
// time of day. A 23-hour day (clocks forward) has no bucket for the
// skipped hour's slots; a 25-hour day (clocks back) has two for the
// repeated hour's.
func slotBuckets(b int64, k int, loc *time.Location, buf []int64) []int64 {
	if loc == time.UTC {
		return append(buf, b-int64(k)*weekSec)
	}
	t := time.Unix(b, 0).In(loc)
	y, m, d := t.Date()
	hh, mm, _ := t.Clock()
	wall := time.Date(y, m, d-7*k, hh, mm, 0, 0, time.UTC).Unix() // the wall clock, read as UTC
	// The instants that read wall in loc: wall − offset, for the offsets in
	// force a day either side (one transition at most in between).
	_, before := time.Unix(wall-86400, 0).In(loc).Zone()
	_, after := time.Unix(wall+86400, 0).In(loc).Zone()
	for i, off := range []int{before, after} {
		if i == 1 && off == before {
			break
		}
		at := wall - int64(off)
		if _, o := time.Unix(at, 0).In(loc).Zone(); o == off {
			buf = append(buf, at)
		}
	}
	return buf
}

// slotTotal is the demand of the slot of bucket b k weeks earlier in loc:
// the largest of its buckets' (the repeated hour of a 25-hour day folds
// its two buckets into one slot, as two replicas' writes of one bucket
// fold). ok is false when the slot was not observed (or did not exist).
func (h *History) slotTotal(b int64, k int, loc *time.Location) (v float64, ok bool) {
	var buf [2]int64
	for _, x := range slotBuckets(b, k, loc, buf[:0]) {
		if t, seen := h.total(x); seen && (!ok || t > v) {
			v, ok = t, true
		}
	}
	return v, ok
}

// Estimate is the usual demand of the slot of the week holding target, in
// p.Zone: a weighted 80th percentile of the same wall-clock slot in the
// last p.Weeks weeks (weights 0.75^(k-1) for k weeks back), capped at the
// second largest of them so that a single odd week is never taken for a
// habit. With two weeks, which one is odd cannot be told: the larger, so
// that the forecast's first week is ready for either (the smaller would
// take a day off for the habit); from three weeks on, the cap leaves a
// one-off out. A week whose slot was
// not observed — or did not exist: the hour skipped by clocks going
// forward — is left out; a slot in the hour repeated by clocks going back
// is the larger of its two buckets. ok is false with under two weeks
// observed; samples counts them.
func (h *History) Estimate(target time.Time, p Params) (v float64, samples int, ok bool) {
	b := BucketOf(target).Unix()
	loc := p.zone()
	type wv struct{ v, w float64 }
	var vs []wv
	w := 1.0
	for k := 1; k <= p.Weeks; k++ {
		if x, ok := h.slotTotal(b, k, loc); ok {
			vs = append(vs, wv{x, w})
		}
		w *= decay
	}
	switch len(vs) {
	case 0, 1:
		return 0, len(vs), false
	case 2:
		return max(vs[0].v, vs[1].v), 2, true
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
		v, _, ok := h.Estimate(time.Unix(b, 0), p)
		return v, ok
	})
}

// NaiveErrors is Errors for the seasonal naive forecast (last week's same
// slot of the week, in p.Zone), the baseline the estimator must beat.
func (h *History) NaiveErrors(from, to time.Time, p Params) *decide.ForecastError {
	loc := p.zone()
	return h.errorsOf(from, to, p, func(b int64) (float64, bool) { return h.slotTotal(b, 1, loc) })
}

func (h *History) errorsOf(from, to time.Time, p Params, estimate func(b int64) (float64, bool)) *decide.ForecastError {
	oldest, ok := h.Oldest()
	if !ok {
		return nil
	}
	minDepth := int64(p.MinWeeks * float64(weekSec))
	const stake = decide.ForecastStakeReplicas
	var e decide.ForecastError
	var sumAbs, sumErr, sumOver, sumActual, stakeAbs, stakeActual, sumPct float64
	var stakeBuckets, pctBuckets int
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
		if d > 0 {
			sumOver += d
			e.ExtraPodHours += d * Bucket.Hours()
		}
		if est >= stake || actual >= stake {
			stakeBuckets++
			stakeAbs += math.Abs(d)
			stakeActual += actual
		}
		if actual >= stake {
			pctBuckets++
			sumPct += math.Abs(d) / actual
			if math.Ceil(est) < math.Ceil(actual) {
				e.UnderMinutes += Bucket.Minutes()
			}
		}
	}
	if e.Buckets == 0 {
		return nil
	}
	n := float64(e.Buckets)
	e.MeanError, e.MeanAbsError = sumErr/n, sumAbs/n
	e.Over = sumOver / math.Max(sumActual, 1)
	if stakeBuckets > 0 {
		e.Relative = stakeAbs / math.Max(stakeActual, 1)
	}
	if pctBuckets > 0 {
		v := sumPct / float64(pctBuckets)
		e.MAPE = &v
	}
	return &e
}

// Evaluate is the forecast's evidence at now: the estimate of the slot
// p.LeadTime ahead, the history's depth, last week's error and the most it
// would ask for over the next hour.
func Evaluate(h *History, now time.Time, mode string, p Params) decide.ForecastEvidence {
	e := Evidence(h, now, mode, p)
	e.LastWeek = h.Errors(now.Add(-Week), now, p)
	e.NextHour = nextHour(h, now, mode, p, e.LastWeek)
	return e
}

// Evidence is Evaluate without last week's error, for callers that refresh
// that (a week of estimates) less often than the slot.
func Evidence(h *History, now time.Time, mode string, p Params) decide.ForecastEvidence {
	target := now.Add(p.LeadTime)
	e := decide.ForecastEvidence{
		Mode:         mode,
		Target:       target.UTC(),
		Slot:         SlotName(target, p.Zone),
		Zone:         p.zone().String(),
		HistoryWeeks: math.Round(h.Depth(now)*100) / 100,
		MinWeeks:     p.MinWeeks,
		MaxError:     p.MaxError,
	}
	if v, n, ok := h.Estimate(target, p); ok {
		e.Estimate = &v
		e.Samples = n
	} else {
		e.Samples = n
	}
	return e
}

// SlotName names the slot of the week holding t in loc (nil: UTC), with the
// zone's abbreviation then ("Tue 18:05 CEST").
func SlotName(t time.Time, loc *time.Location) string {
	return BucketOf(t).In(Params{Zone: loc}.zone()).Format("Mon 15:04 MST")
}
