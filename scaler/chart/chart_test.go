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

// peak is a short burst of a long trace.
type peak struct {
	at  time.Time
	dur time.Duration
	v   float64
}

// longTrace is six weeks of replicas sampled every 30 s, as simulate draws
// them: one replica, and an evening burst every few days.
func longTrace() (*Chart, []peak) {
	from := t0
	until := from.Add(6 * 7 * 24 * time.Hour)
	var peaks []peak
	for d := 2; d < 42; d += 3 {
		peaks = append(peaks, peak{from.Add(time.Duration(d)*24*time.Hour + 19*time.Hour), time.Duration(20+d%4*25) * time.Minute, float64(2 + d%7)})
	}
	var reps []Point
	for t := from; t.Before(until); t = t.Add(30 * time.Second) {
		v := 1.0
		for _, p := range peaks {
			if !t.Before(p.at) && t.Before(p.at.Add(p.dur)) {
				v = p.v
			}
		}
		reps = append(reps, Point{t, v})
	}
	return &Chart{
		Title: "six weeks",
		From:  from, Until: until,
		Panels: []Panel{
			{Title: "replicas", YLabel: "replicas", YMax: 10, Series: []Series{{Label: "replicas", Color: Palette[1], Points: reps, Step: true}}},
			{Title: "queue", YLabel: "tasks", YMax: 100, Series: []Series{
				{Label: "target", Color: Palette[0], Points: []Point{{from, 30}, {until, 30}}, Dashed: true},
			}},
		},
	}, peaks
}

func TestPNGOfALongTraceKeepsItsBackgroundAndItsPeaks(t *testing.T) {
	c, peaks := longTrace()
	var b bytes.Buffer
	if err := c.WritePNG(&b); err != nil {
		t.Fatal(err)
	}
	if name := os.Getenv("CHART_PNG"); name != "" {
		_ = os.WriteFile(name, b.Bytes(), 0o644)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	y := func(panel int, v float64) float64 {
		return float64(panelTop(panel)) + panelHeight - v/c.Panels[panel].YMax*panelHeight
	}
	// Where ink may be: grid lines, the frame, and within 3 pixels of a
	// series (the baseline of 1, each burst, the target of 30).
	var ink []image.Rectangle
	line := func(x0, y0, x1, y1 float64) {
		ink = append(ink, image.Rect(int(math.Floor(x0))-3, int(math.Floor(y0))-3, int(math.Ceil(x1))+4, int(math.Ceil(y1))+4))
	}
	left, right := float64(marginLeft), float64(marginLeft+plotWidth)
	line(left, y(0, 1), right, y(0, 1))
	for _, p := range peaks {
		line(c.x(p.at), y(0, p.v), c.x(p.at.Add(p.dur)), y(0, 1))
	}
	line(left, y(1, 30), right, y(1, 30))
	for i, pn := range c.Panels {
		top := panelTop(i)
		for _, v := range yTicks(pn.YMax) {
			line(left, y(i, v), right, y(i, v))
		}
		for _, tk := range c.xTicks() {
			line(c.x(tk.t), float64(top), c.x(tk.t), float64(top+panelHeight))
		}
	}
	// Where nothing but ink may differ from the white background: each
	// plot area inside its frame, the gap between the panels, and the right
	// margin under each legend.
	var quiet []image.Rectangle
	for i := range c.Panels {
		top := panelTop(i)
		quiet = append(quiet, image.Rect(marginLeft+1, top+1, marginLeft+plotWidth, top+panelHeight),
			image.Rect(marginLeft+plotWidth+2, top+12+len(c.legend(i))*legendLine+6, width, top+panelHeight))
	}
	quiet = append(quiet, image.Rect(0, panelTop(0)+panelHeight+6, width, panelTop(1)-24))
	checked, stained := 0, 0
	for _, r := range quiet {
		for py := r.Min.Y; py < r.Max.Y; py++ {
			for px := r.Min.X; px < r.Max.X; px++ {
				if slices.ContainsFunc(ink, image.Pt(px, py).In) {
					continue
				}
				checked++
				if cr, cg, cb, _ := img.At(px, py).RGBA(); cr != 0xffff || cg != 0xffff || cb != 0xffff {
					if stained++; stained <= 3 {
						t.Errorf("pixel (%d,%d) is %d,%d,%d, want the white background", px, py, cr>>8, cg>>8, cb>>8)
					}
				}
			}
		}
	}
	if stained > 0 {
		t.Errorf("%d of %d background pixels stained", stained, checked)
	}
	if checked < 100_000 {
		t.Errorf("only %d background pixels checked", checked)
	}
	// The narrowest burst is under a pixel wide, and is still drawn to its
	// top in the series' colour.
	p := slices.MinFunc(peaks, func(a, b peak) int { return int(a.dur - b.dur) })
	if w := c.x(p.at.Add(p.dur)) - c.x(p.at); w >= 1 {
		t.Fatalf("the narrowest burst is %.2f pixels wide, want under one", w)
	}
	px := int(math.Floor(c.x(p.at)))
	for _, v := range []float64{p.v, (p.v + 1) / 2} {
		py := int(math.Round(y(0, v)))
		if r, g, bl, _ := img.At(px, py).RGBA(); r != 0x101*uint32(Palette[1].R) || g != 0x101*uint32(Palette[1].G) || bl != 0x101*uint32(Palette[1].B) {
			t.Errorf("the %g-replica burst at %s: pixel (%d,%d) at %g is %d,%d,%d, want the series' colour", p.v, p.at.Format(time.DateTime), px, py, v, r>>8, g>>8, bl>>8)
		}
	}
}

func TestDecimateKeepsEachColumnsFirstExtremesAndLast(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want [][2]float64
	}{
		{"points in columns of their own are all kept",
			[][2]float64{{0.5, 1}, {1.5, 2}, {2.5, 3}}, [][2]float64{{0.5, 1}, {1.5, 2}, {2.5, 3}}},
		{"a crowded column keeps its first, highest, lowest and last point, in their order",
			[][2]float64{{3.1, 5}, {3.2, 9}, {3.3, 2}, {3.4, 7}, {3.5, 4}, {4.2, 4}}, [][2]float64{{3.1, 5}, {3.2, 9}, {3.3, 2}, {3.5, 4}, {4.2, 4}}},
		{"a flat run keeps its ends",
			[][2]float64{{7, 3}, {7.2, 3}, {7.4, 3}, {7.9, 3}}, [][2]float64{{7, 3}, {7.9, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decimate(slices.Clone(tc.in)); !slices.Equal(got, tc.want) {
				t.Errorf("decimate(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	// Six weeks every 30 s: a few points a column, every burst at its
	// height, in the path both the SVG and the PNG draw.
	c, peaks := longTrace()
	paths := c.polyline(c.Panels[0].Series[0], panelTop(0), c.Panels[0].YMax)
	if len(paths) != 1 {
		t.Fatalf("%d paths, want 1", len(paths))
	}
	if n := len(paths[0]); n > 4*(plotWidth+1) {
		t.Errorf("%d points for %d columns", n, plotWidth)
	}
	for _, p := range peaks {
		top := float64(panelTop(0)) + panelHeight - p.v/c.Panels[0].YMax*panelHeight
		if !slices.ContainsFunc(paths[0], func(pt [2]float64) bool { return pt[1] == top && pt[0] >= c.x(p.at) && pt[0] <= c.x(p.at.Add(p.dur)) }) {
			t.Errorf("the %g-replica burst at %s lost its top", p.v, p.at.Format(time.DateTime))
		}
	}
}
