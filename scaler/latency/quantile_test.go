package latency

import (
	"math"
	"strings"
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

const sampleExposition = `# HELP other_total x
# TYPE other_total counter
other_total 5
# HELP h Request latency.
# TYPE h histogram
h_bucket{path="/a",le="0.1"} 3
h_bucket{path="/a",le="0.5"} 4
h_bucket{path="/a",le="+Inf"} 5
h_sum{path="/a"} 2.5
h_count{path="/a"} 5
h_bucket{path="/b",le="0.1"} 1
h_bucket{path="/b",le="0.5"} 1
h_bucket{path="/b",le="+Inf"} 2
h_sum{path="/b"} 9
h_count{path="/b"} 2
hx_bucket{le="+Inf"} 99
`

func TestParseExposition(t *testing.T) {
	h, err := ParseExposition(strings.NewReader(sampleExposition), "h")
	if err != nil {
		t.Fatal(err)
	}
	want := map[float64]float64{0.1: 4, 0.5: 5, math.Inf(1): 7}
	if len(h.Buckets) != len(want) || h.Series != 2 || h.Count != 7 {
		t.Fatalf("histogram = %+v", h)
	}
	for le, c := range want {
		if h.Buckets[le] != c {
			t.Errorf("bucket %g = %g, want %g", le, h.Buckets[le], c)
		}
	}
	absent, err := ParseExposition(strings.NewReader(sampleExposition), "missing")
	if absent != nil || err != nil {
		t.Errorf("absent family = %v, %v; want nil, nil", absent, err)
	}
	_, err = ParseExposition(strings.NewReader(sampleExposition), "other_total")
	if err == nil || err.Error() != "family other_total is a counter, want a histogram" {
		t.Errorf("counter family error = %v", err)
	}
}

func TestParseExpositionLimits(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"Too many buckets", "# TYPE h histogram\n" + strings.Repeat("h_bucket{le=\"1\"} 1\n", MaxBuckets+1),
			"histogram h: more than 20000 bucket lines (limit)"},
		{"A body over the limit", strings.Repeat("# filler line that is not the family ........................\n", MaxBodyBytes/60+10),
			"exposition larger than the 16 MiB limit"},
		{"A line over the limit", "h_bucket{le=\"" + strings.Repeat("9", maxLine) + "\"} 1\n",
			"exposition line longer than the 64 KiB limit"},
		{"A broken line", "# TYPE h histogram\nh_bucket{le=\"1\" 1\n",
			`parsing histogram h: text format parsing error in line 2: unexpected end of label value "1"`},
		{"An infinite bucket count is not a count", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} +Inf\nh_count 2\n",
			`histogram h: bucket le="+Inf" count +Inf is not a count`},
		{"An infinite _count is not a count", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count +Inf\n",
			`histogram h: _count +Inf is not a count`},
		{"A -Inf bound is not an upper bound", "# TYPE h histogram\nh_bucket{le=\"-Inf\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
			`histogram h: bucket le="-Inf" is not an upper bound`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseExposition(strings.NewReader(tt.body), "h")
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
