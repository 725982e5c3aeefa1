package prom

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/montage/montage-scaler/scaler/latency"
)

// repeatReader streams line forever (up to n bytes) without holding it all.
type repeatReader struct {
	line []byte
	n    int64
	off  int
	read int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	w := 0
	for w < len(p) && r.read < r.n {
		c := copy(p[w:], r.line[r.off:])
		r.off = (r.off + c) % len(r.line)
		w += c
		r.read += int64(c)
	}
	return w, nil
}

func TestHostileExpositionsStayBounded(t *testing.T) {
	tests := []struct {
		name string
		r    *repeatReader
		want string
	}{
		{"A 100 MB body stops at the body limit", &repeatReader{line: []byte("other_metric{a=\"b\"} 1\n"), n: 100 << 20},
			"exposition larger than the 16 MiB limit"},
		{"A million buckets stop at the bucket limit", &repeatReader{line: []byte("h_bucket{le=\"0.1\"} 1\n"), n: 1_000_000 * 21},
			"histogram h: more than 20000 bucket lines (limit)"},
		{"An endless line stops at the line limit", &repeatReader{line: []byte("h_bucket{le=\"0.1\"} 1"), n: 100 << 20},
			"exposition line longer than the 64 KiB limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := ParseExposition(tt.r, "h")
			runtime.ReadMemStats(&after)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
			if tt.r.read > MaxBodyBytes+64<<10 {
				t.Errorf("read %d bytes, want at most the limit %d plus one buffer", tt.r.read, MaxBodyBytes)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("allocated %d MiB, want a bounded amount", grew>>20)
			}
		})
	}
}

func FuzzParseExposition(f *testing.F) {
	f.Add(sampleExposition)
	f.Add("# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n")
	f.Add("h_bucket{le=\"NaN\"} 1\n")
	f.Add("# TYPE h counter\nh 1\n")
	f.Add("h_bucket{le=\"0.1\"\n")
	f.Add("# TYPE h histogram\nh_bucket{le=\"1\"} -5\nh_bucket{le=\"+Inf\"} 1e308\n")
	f.Fuzz(func(t *testing.T, body string) {
		h, err := ParseExposition(strings.NewReader(body), "h")
		if err != nil {
			if h != nil {
				t.Errorf("both a histogram and an error")
			}
			return
		}
		if h == nil {
			return
		}
		if len(h.Buckets) > MaxBuckets+h.Series {
			t.Errorf("%d buckets, limit %d", len(h.Buckets), MaxBuckets)
		}
		b := make([]latency.Bucket, 0, len(h.Buckets))
		for le, c := range h.Buckets {
			b = append(b, latency.Bucket{UpperBound: le, Count: c})
		}
		v, _ := latency.Quantile(0.95, b) // must not panic
		_ = fmt.Sprint(v, math.IsNaN(v))
	})
}
