// Package chart draws time-series charts for people: panels stacked over one
// time axis, each with a title, a y-axis label, ticks, grid lines and a
// legend, under a title, with shaded intervals (calendar windows) across
// them. It writes SVG, or PNG with its text set in the Go fonts (pure Go:
// no system font, no cgo), so a PNG reads as well as the SVG.
package chart

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"time"
)

// Point is one value at one instant; a NaN value is a gap in the line.
type Point struct {
	T time.Time
	V float64
}

// Series is one line of a panel.
type Series struct {
	Label  string
	Color  color.RGBA
	Points []Point
	// Step draws the value as held until the next point (replicas,
	// queue lengths), instead of a straight line between points.
	Step bool
	// Dashed is for reference lines (a target, a threshold).
	Dashed bool
}

// Panel is one plot area.
type Panel struct {
	Title  string
	YLabel string
	Series []Series
	// YMax is the top of the y axis; zero: a round number above the data.
	YMax float64
}

// Band is an interval shaded across every panel.
type Band struct {
	From, Until time.Time
	// Label is shown on hover in SVG.
	Label string
}

// Chart is panels over [From, Until].
type Chart struct {
	Title       string
	From, Until time.Time
	Panels      []Panel
	Bands       []Band
	// BandLegend names the shaded bands in the legend of the first panel;
	// empty: no legend entry.
	BandLegend string
	// Location is the time axis' zone; nil: UTC.
	Location *time.Location
}

// Palette is a set of distinguishable colours (Tableau 10) for series
// without a colour of their own.
var Palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
}

// BandColor shades the bands.
var BandColor = color.RGBA{0xff, 0xdd, 0x88, 0xff}

// Geometry, in pixels (SVG user units).
const (
	width        = 1000
	marginLeft   = 84  // y tick labels and the rotated y label
	marginRight  = 200 // legend
	marginTop    = 62  // title
	panelHeight  = 180
	panelGap     = 46 // panel title above each panel
	marginBottom = 58 // x tick labels and the x label
	plotWidth    = width - marginLeft - marginRight
	legendLine   = 18
)

func (c *Chart) height() int {
	return marginTop + len(c.Panels)*(panelHeight+panelGap) - panelGap + marginBottom
}

// panelTop is the y of panel i's plot area.
func panelTop(i int) int { return marginTop + i*(panelHeight+panelGap) }

func (c *Chart) validate() error {
	switch {
	case len(c.Panels) == 0:
		return fmt.Errorf("chart: no panel")
	case !c.Until.After(c.From):
		return fmt.Errorf("chart: time axis %s to %s: want an end after the start", c.From.Format(time.RFC3339), c.Until.Format(time.RFC3339))
	}
	return nil
}

func (c *Chart) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// x maps an instant to a pixel column of the plot area.
func (c *Chart) x(t time.Time) float64 {
	span := c.Until.Sub(c.From).Seconds()
	return marginLeft + t.Sub(c.From).Seconds()/span*plotWidth
}

// yMax is the top of panel p's axis.
func (p *Panel) yMax() float64 {
	if p.YMax > 0 {
		return p.YMax
	}
	m := 0.0
	for _, s := range p.Series {
		for _, pt := range s.Points {
			if !math.IsNaN(pt.V) && !math.IsInf(pt.V, 0) {
				m = math.Max(m, pt.V)
			}
		}
	}
	if m <= 0 {
		return 1
	}
	return niceCeil(m)
}

// niceCeil is the smallest of 1, 2, 2.5, 5 or 10 times a power of ten that is
// at least v.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// yTicks are 3 to 6 round values from 0 to max.
func yTicks(max float64) []float64 {
	step := niceCeil(max / 5)
	var ts []float64
	for v := 0.0; v <= max*(1+1e-9); v += step {
		ts = append(ts, v)
	}
	return ts
}

func tickLabel(v float64) string {
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

var timeSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
}

// xTick is a labelled instant on the time axis.
type xTick struct {
	t     time.Time
	label string
}

// xTicks are at most 8 instants at a round step, labelled in the chart's
// zone: clock times, and the date at a midnight when the axis spans more
// than a day or reaches the next.
func (c *Chart) xTicks() []xTick {
	span := c.Until.Sub(c.From)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	loc := c.loc()
	from := c.From.In(loc)
	// Align to the step in the zone's wall clock (midnight-based).
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc)
	t := day
	for t.Before(from) {
		t = t.Add(step)
	}
	multiDay := c.From.In(loc).YearDay() != c.Until.Add(-time.Nanosecond).In(loc).YearDay() || span > 24*time.Hour
	var out []xTick
	for ; !t.After(c.Until); t = t.Add(step) {
		l := t.Format("15:04")
		switch {
		case step >= 24*time.Hour:
			l = t.Format("Jan 2")
		case (multiDay || t.YearDay() != from.YearDay()) && t.Hour() == 0 && t.Minute() == 0:
			l = t.Format("Jan 2")
		}
		out = append(out, xTick{t: t, label: l})
	}
	return out
}

// xLabel names the time axis, with the dates it spans.
func (c *Chart) xLabel() string {
	loc := c.loc()
	a, b := c.From.In(loc), c.Until.In(loc)
	zone := a.Format("MST")
	if a.Format("2006-01-02") == b.Add(-time.Nanosecond).Format("2006-01-02") {
		return fmt.Sprintf("time (%s), %s", zone, a.Format("Mon 2 Jan 2006"))
	}
	return fmt.Sprintf("time (%s), %s to %s", zone, a.Format("Mon 2 Jan 2006 15:04"), b.Format("Mon 2 Jan 2006 15:04"))
}

// seriesColor is s's colour, or the palette's i-th.
func seriesColor(s Series, i int) color.RGBA {
	if s.Color.A != 0 {
		return s.Color
	}
	return Palette[i%len(Palette)]
}

// polyline returns the pixel path of s in panel p (top y0), split at gaps,
// decimated to the pixel columns.
func (c *Chart) polyline(s Series, y0 int, ymax float64) [][][2]float64 {
	y := func(v float64) float64 {
		v = math.Min(math.Max(v, 0), ymax)
		return float64(y0) + panelHeight - v/ymax*panelHeight
	}
	var out [][][2]float64
	var cur [][2]float64
	flush := func() {
		if len(cur) > 0 {
			out = append(out, decimate(cur))
		}
		cur = nil
	}
	for i, pt := range s.Points {
		if pt.T.Before(c.From) || pt.T.After(c.Until) || math.IsNaN(pt.V) {
			flush()
			continue
		}
		px, py := c.x(pt.T), y(pt.V)
		if s.Step && len(cur) > 0 {
			cur = append(cur, [2]float64{px, cur[len(cur)-1][1]})
		}
		cur = append(cur, [2]float64{px, py})
		if s.Step && i > 0 && (i == len(s.Points)-1 || math.IsNaN(s.Points[i+1].V)) {
			// The last value holds for one more interval, as the others do.
			end := pt.T.Add(pt.T.Sub(s.Points[i-1].T))
			if end.After(c.Until) {
				end = c.Until
			}
			cur = append(cur, [2]float64{c.x(end), py})
		}
	}
	flush()
	return out
}

// decimate keeps, of each run of points in one pixel column, the first, the
// highest, the lowest and the last, in their order: the line spans the same
// rows in each column, every peak keeps its height, and a trace of weeks
// costs at most four points a column. Drawing the thousands of sub-pixel
// segments instead is slow, bloats the SVG, and in the PNG their
// overlapping coverage adds up in the rasterizer's float32 running sum,
// whose rounding left a tint on every pixel after the line.
func decimate(path [][2]float64) [][2]float64 {
	out := path[:0] // writes never overtake reads: at most four per run
	for i := 0; i < len(path); {
		col := math.Floor(path[i][0])
		j, top, bottom := i, i, i
		for ; j < len(path) && math.Floor(path[j][0]) == col; j++ {
			if path[j][1] < path[top][1] {
				top = j
			}
			if path[j][1] > path[bottom][1] {
				bottom = j
			}
		}
		keep := []int{i, top, bottom, j - 1}
		slices.Sort(keep)
		keep = slices.Compact(keep)
		var pts [4][2]float64
		for k, at := range keep {
			pts[k] = path[at]
		}
		out = append(out, pts[:len(keep)]...)
		i = j
	}
	return out
}
