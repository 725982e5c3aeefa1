package latency

import (
	"math"
	"slices"
)

// Bucket is one cumulative histogram bucket: Count observations ≤ UpperBound.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Quantile computes the q-quantile of cumulative buckets with the same
// interpolation as PromQL's histogram_quantile (Prometheus promql/quantile.go
// bucketQuantile): buckets sorted and merged by bound, counts forced
// monotonic, linear interpolation inside the bucket that holds the rank, the
// first bucket starting at 0. It returns NaN without a +Inf bucket, with
// fewer than two buckets or no observations. atLeast is true when the rank
// falls in the +Inf bucket: the answer is then the highest finite bound, a
// lower bound of the true quantile.
func Quantile(q float64, buckets []Bucket) (v float64, atLeast bool) {
	if math.IsNaN(q) {
		return math.NaN(), false
	}
	if q < 0 {
		return math.Inf(-1), false
	}
	if q > 1 {
		return math.Inf(1), false
	}
	b := slices.Clone(buckets)
	slices.SortFunc(b, func(x, y Bucket) int {
		switch {
		case x.UpperBound < y.UpperBound:
			return -1
		case x.UpperBound > y.UpperBound:
			return 1
		}
		return 0
	})
	if len(b) == 0 || !math.IsInf(b[len(b)-1].UpperBound, 1) {
		return math.NaN(), false
	}
	b = coalesce(b)
	ensureMonotonic(b)
	if len(b) < 2 {
		return math.NaN(), false
	}
	observations := b[len(b)-1].Count
	if observations == 0 {
		return math.NaN(), false
	}
	rank := q * observations
	i, _ := slices.BinarySearchFunc(b[:len(b)-1], rank, func(x Bucket, r float64) int {
		if x.Count >= r {
			return 1
		}
		return -1
	})
	if i == len(b)-1 {
		return b[len(b)-2].UpperBound, true
	}
	if i == 0 && b[0].UpperBound <= 0 {
		return b[0].UpperBound, false
	}
	start, end, count := 0.0, b[i].UpperBound, b[i].Count
	if i > 0 {
		start = b[i-1].UpperBound
		count -= b[i-1].Count
		rank -= b[i-1].Count
	}
	return start + (end-start)*(rank/count), false
}

// coalesce merges buckets with the same bound (sorted input).
func coalesce(b []Bucket) []Bucket {
	out := b[:0]
	for _, x := range b {
		if n := len(out); n > 0 && out[n-1].UpperBound == x.UpperBound {
			out[n-1].Count += x.Count
			continue
		}
		out = append(out, x)
	}
	return out
}

// ensureMonotonic raises any count below an earlier one: independent
// per-bucket counter resets or scrape skew can break cumulativeness.
func ensureMonotonic(b []Bucket) {
	hi := math.Inf(-1)
	for i := range b {
		switch {
		case b[i].Count > hi:
			hi = b[i].Count
		case b[i].Count < hi:
			b[i].Count = hi
		}
	}
}
