package prom

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ParseExposition reads the text exposition r and returns family's histogram
// summed by le over every label set, or nil when the family is absent. It
// keeps only the family's own lines, so other families cost a scan but no
// parsing; bodies over MaxBodyBytes, more than MaxBuckets bucket lines and
// lines over 64 KiB are errors that say so.
func ParseExposition(r io.Reader, family string) (*PodHistogram, error) {
	kept, err := familyLines(r, family)
	if err != nil || kept.Len() == 0 {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(kept)
	if err != nil {
		return nil, fmt.Errorf("parsing histogram %s: %w", family, err)
	}
	mf, ok := fams[family]
	if !ok {
		return nil, nil
	}
	if mf.GetType() != dto.MetricType_HISTOGRAM {
		return nil, fmt.Errorf("family %s is a %s, want a histogram", family, strings.ToLower(mf.GetType().String()))
	}
	h := &PodHistogram{Buckets: map[float64]float64{}}
	for _, m := range mf.GetMetric() {
		if hist := m.GetHistogram(); hist != nil {
			if err := h.add(family, hist); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// familyLines streams r and keeps the lines about family (its samples,
// # HELP and # TYPE), within the limits.
func familyLines(r io.Reader, family string) (*bytes.Buffer, error) {
	lr := &io.LimitedReader{R: r, N: MaxBodyBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var kept bytes.Buffer
	bucket, count, sum := family+"_bucket", family+"_count", family+"_sum"
	buckets := 0
	for sc.Scan() {
		line := sc.Bytes()
		name, ok := lineMetric(line)
		if !ok {
			continue
		}
		switch name {
		case family:
			// # HELP / # TYPE of the family.
		case bucket:
			buckets++
			if buckets > MaxBuckets {
				return nil, fmt.Errorf("histogram %s: more than %d bucket lines (limit)", family, MaxBuckets)
			}
		case count, sum:
		default:
			continue
		}
		kept.Write(line)
		kept.WriteByte('\n')
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("exposition larger than the %d MiB limit", MaxBodyBytes>>20)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("exposition line longer than the %d KiB limit", maxLine>>10)
		}
		return nil, fmt.Errorf("reading exposition: %w", err)
	}
	return &kept, nil
}

// add sums one label set's histogram into h.
func (h *PodHistogram) add(family string, hist *dto.Histogram) error {
	h.Series++
	n := float64(hist.GetSampleCount())
	if hist.SampleCountFloat != nil {
		n = hist.GetSampleCountFloat()
	}
	if !isCount(n) {
		return fmt.Errorf("histogram %s: _count %g is not a count", family, n)
	}
	h.Count += n
	hasInf := false
	for _, b := range hist.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			c = b.GetCumulativeCountFloat()
		}
		if math.IsNaN(b.GetUpperBound()) || math.IsNaN(c) {
			return fmt.Errorf("histogram %s: NaN bucket", family)
		}
		// A count that is not one, or a -Inf bound, would make the
		// quantile +Inf, -Inf or NaN, and NaN reads as "no requests".
		if !isCount(c) {
			return fmt.Errorf("histogram %s: bucket le=%q count %g is not a count", family, formatBound(b.GetUpperBound()), c)
		}
		if math.IsInf(b.GetUpperBound(), -1) {
			return fmt.Errorf("histogram %s: bucket le=\"-Inf\" is not an upper bound", family)
		}
		hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
		h.Buckets[b.GetUpperBound()] += c
	}
	if !hasInf {
		// _count is the +Inf bucket by definition.
		h.Buckets[math.Inf(1)] += n
	}
	return nil
}

// lineMetric returns the metric name a line is about: the sample's name, or
// the name in a # HELP / # TYPE comment. ok is false for other lines.
func lineMetric(line []byte) (string, bool) {
	line = bytes.TrimLeft(line, " \t")
	if len(line) == 0 {
		return "", false
	}
	if line[0] == '#' {
		f := bytes.Fields(line)
		if len(f) >= 3 && (string(f[1]) == "HELP" || string(f[1]) == "TYPE") {
			return string(f[2]), true
		}
		return "", false
	}
	end := bytes.IndexAny(line, "{ \t")
	if end < 0 {
		return "", false
	}
	return string(line[:end]), true
}

// isCount reports whether c is an observation count: finite and ≥ 0.
func isCount(c float64) bool { return c >= 0 && !math.IsInf(c, 1) }
