package latency

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name    string
		q       float64
		b       []Bucket
		want    float64
		atLeast bool
	}{
		{"Interpolates inside the bucket holding the rank", 0.95,
			[]Bucket{{0.05, 50}, {0.1, 90}, {0.25, 90}, {0.5, 100}, {inf, 100}}, 0.375, false},
		{"The first bucket starts at zero", 0.5,
			[]Bucket{{0.1, 10}, {inf, 10}}, 0.05, false},
		{"Unsorted input is sorted first", 0.95,
			[]Bucket{{inf, 100}, {0.5, 100}, {0.05, 50}, {0.25, 90}, {0.1, 90}}, 0.375, false},
		{"A rank in the +Inf bucket is the highest bound, at least", 0.95,
			[]Bucket{{0.1, 10}, {0.5, 20}, {inf, 100}}, 0.5, true},
		{"No observations is NaN", 0.95,
			[]Bucket{{0.1, 0}, {inf, 0}}, math.NaN(), false},
		{"No +Inf bucket is NaN", 0.95,
			[]Bucket{{0.1, 5}, {0.2, 10}}, math.NaN(), false},
		{"Non-monotonic counts are raised as PromQL does", 0.75,
			[]Bucket{{0.1, 10}, {0.2, 4}, {0.4, 20}, {inf, 20}}, 0.3, false},
		{"Duplicate bounds are merged", 0.25,
			[]Bucket{{0.1, 5}, {0.1, 5}, {inf, 10}, {inf, 10}}, 0.05, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, atLeast := Quantile(tt.q, tt.b)
			if !(math.IsNaN(tt.want) && math.IsNaN(got)) && math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("Quantile = %v, want %v", got, tt.want)
			}
			if atLeast != tt.atLeast {
				t.Errorf("atLeast = %v, want %v", atLeast, tt.atLeast)
			}
		})
	}
}
