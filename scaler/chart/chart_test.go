package chart

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// sample is a day of two series, a reference line and a shaded band.
func sample() *Chart {
	var reps, queue []Point
	for m := 0; m <= 24*60; m += 5 {
		t := t0.Add(time.Duration(m) * time.Minute)
		v := 1 + 3*math.Max(0, math.Sin(float64(m)/1440*2*math.Pi))
		reps = append(reps, Point{t, math.Round(v)})
		q := 40 * math.Max(0, math.Sin(float64(m)/200))
		if m > 600 && m < 660 {
			q = math.NaN() // a gap
		}
		queue = append(queue, Point{t, q})
	}
	return &Chart{
		Title: "montage/montage: replicas and queue",
		From:  t0, Until: t0.Add(24 * time.Hour),
		Panels: []Panel{
			{Title: "replicas", YLabel: "replicas", Series: []Series{{Label: "spec.replicas", Points: reps, Step: true}}},
			{Title: "queue", YLabel: "tasks", Series: []Series{
				{Label: "queued", Points: queue},
				{Label: "target", Points: []Point{{t0, 30}, {t0.Add(24 * time.Hour), 30}}, Dashed: true},
			}},
		},
		Bands:      []Band{{From: t0.Add(18 * time.Hour), Until: t0.Add(20 * time.Hour), Label: "live session"}},
		BandLegend: "calendar window",
	}
}

func TestTicksAreRoundNumbersAndTimes(t *testing.T) {
	for _, tc := range []struct {
		max  float64
		want []float64
	}{
		{8, []float64{0, 2, 4, 6, 8}},
		{1, []float64{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}},
		{250, []float64{0, 50, 100, 150, 200, 250}},
	} {
		if got := yTicks(tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("yTicks(%g) = %v, want %v", tc.max, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want float64 }{{7.2, 10}, {8, 10}, {3, 5}, {0.21, 0.25}, {120, 200}} {
		if got := niceCeil(tc.in); got != tc.want {
			t.Errorf("niceCeil(%g) = %g, want %g", tc.in, got, tc.want)
		}
	}
	c := sample()
	var labels []string
	for _, x := range c.xTicks() {
		labels = append(labels, x.label)
	}
	if want := []string{"00:00", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "Mar 3"}; !slices.Equal(labels, want) {
		t.Errorf("a day's ticks = %q, want %q", labels, want)
	}
	c.Until = t0.Add(4 * time.Hour)
	labels = nil
	for _, x := range c.xTicks() {
		labels = append(labels, x.label)
	}
	if want := []string{"00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "03:30", "04:00"}; !slices.Equal(labels, want) {
		t.Errorf("4 hours' ticks = %q, want %q", labels, want)
	}
	if got, want := c.xLabel(), "time (UTC), Mon 2 Mar 2026"; got != want {
		t.Errorf("x label %q, want %q", got, want)
	}
}

func TestSVGHasTheTextAPersonReads(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"<svg ", "montage/montage: replicas and queue", ">replicas<", ">tasks<", ">queued<", ">target<",
		">calendar window<", "<title>live session</title>", "time (UTC), Mon 2 Mar 2026<", "stroke-dasharray", "<polyline"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	// The gap splits the queue's line: spec.replicas, queued in two, target.
	if n := strings.Count(s, "<polyline"); n != 4 {
		t.Errorf("%d polylines, want 4", n)
	}
}

// inkIn counts the pixels of r that are neither white nor the band colour:
// text and lines.
func inkIn(img image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if cr < 0x9000 && cg < 0x9000 && cb < 0x9000 {
				n++
			}
		}
	}
	return n
}

func TestPNGHasTextWhereTheSVGHasIt(t *testing.T) {
	c := sample()
	var b bytes.Buffer
	if err := c.WritePNG(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := img.Bounds().Size(), image.Pt(width, c.height()); got != want {
		t.Fatalf("size %v, want %v", got, want)
	}
	if os.Getenv("CHART_PNG") != "" {
		var out bytes.Buffer
		_ = c.WritePNG(&out)
		_ = os.WriteFile(os.Getenv("CHART_PNG"), out.Bytes(), 0o644)
	}
	bottom := panelTop(len(c.Panels)-1) + panelHeight
	for _, area := range []struct {
		what string
		r    image.Rectangle
	}{
		{"the title", image.Rect(marginLeft, 12, marginLeft+300, 36)},
		{"the first panel's title", image.Rect(marginLeft, panelTop(0)-22, marginLeft+100, panelTop(0)-2)},
		{"the y-axis label", image.Rect(8, panelTop(0), 32, panelTop(0)+panelHeight)},
		{"the y tick labels", image.Rect(20, panelTop(0)-6, marginLeft-4, panelTop(0)+panelHeight+6)},
		{"the legend", image.Rect(marginLeft+plotWidth+38, panelTop(0), width, panelTop(0)+3*legendLine)},
		{"the time ticks", image.Rect(marginLeft-30, bottom+4, marginLeft+plotWidth+30, bottom+24)},
		{"the time axis label", image.Rect(marginLeft, bottom+28, marginLeft+plotWidth, bottom+48)},
	} {
		if n := inkIn(img, area.r); n < 40 {
			t.Errorf("%s: %d dark pixels in %v, want text", area.what, n, area.r)
		}
	}
}

func TestAChartNeedsPanelsAndATimeSpan(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Chart
		want string
	}{
		{"no panel", Chart{From: t0, Until: t0.Add(time.Hour)}, "chart: no panel"},
		{"an empty time span", Chart{From: t0, Until: t0, Panels: []Panel{{}}}, "chart: time axis 2026-03-02T00:00:00Z to 2026-03-02T00:00:00Z: want an end after the start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.c.WritePNG(&b); err == nil || err.Error() != tc.want {
				t.Errorf("PNG: %v, want %s", err, tc.want)
			}
			if err := tc.c.WriteSVG(&b); err == nil || err.Error() != tc.want {
				t.Errorf("SVG: %v, want %s", err, tc.want)
			}
		})
	}
}
