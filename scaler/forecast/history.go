package forecast

import (
	"math"
	"time"
)

// Bucket is the history's resolution and the forecast's slot length.
const Bucket = 5 * time.Minute

// Week is the habit's period.
const Week = 7 * 24 * time.Hour

const (
	bucketSec = int64(Bucket / time.Second)
	weekSec   = int64(Week / time.Second)
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
