package prom

import (
	"math"
	"strings"
	"testing"
)

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
