package simulate

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"time"
)

// Plot geometry: three panels (load, replicas, queue wait) stacked.
const (
	plotW, panelH, marginL, marginR, marginT, gap = 960, 180, 70, 150, 30, 40
)

// colorOf gives each series its colour.
func colorOf(name string) color.RGBA {
	switch name {
	case Phase1HPA:
		return color.RGBA{0xd6, 0x27, 0x28, 0xff}
	case KEDABuiltin:
		return color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	case MontageScaler:
		return color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	case "tasks":
		return color.RGBA{0x94, 0x67, 0xbd, 0xff}
	case "event":
		return color.RGBA{0xff, 0xdd, 0x88, 0xff}
	}
	return color.RGBA{0x7f, 0x7f, 0x7f, 0xff}
}

// line is one series in panel coordinates: x in seconds from the start,
// y in the panel's unit.
type line struct {
	label string
	color color.RGBA
	xs    []float64
	ys    []float64
}

type panel struct {
	title string
	ymax  float64
	lines []line
}

func panels(r *Report) []panel {
	load := panel{title: "load (per minute; requests ÷ 100)"}
	var lt, lq line
	lt = line{label: "video tasks/min", color: colorOf("tasks")}
	lq = line{label: "requests/min ÷ 100", color: colorOf("requests")}
	for _, s := range r.Load {
		x := s.At.Sub(r.Start).Seconds()
		lt.xs, lt.ys = append(lt.xs, x), append(lt.ys, s.TasksPerMinute)
		lq.xs, lq.ys = append(lq.xs, x), append(lq.ys, s.RequestsPerMinute/100)
	}
	load.lines = []line{lt, lq}
	reps := panel{title: "replicas"}
	wait := panel{title: "oldest queued task's wait (s)"}
	for _, res := range r.Results {
		c := colorOf(res.Policy)
		lr := line{label: res.Policy, color: c}
		lw := line{label: res.Policy, color: c}
		for _, s := range res.Samples {
			x := s.At.Sub(r.Start).Seconds()
			lr.xs, lr.ys = append(lr.xs, x), append(lr.ys, float64(s.Replicas))
			lw.xs, lw.ys = append(lw.xs, x), append(lw.ys, s.OldestWaitSecond)
		}
		reps.lines = append(reps.lines, lr)
		wait.lines = append(wait.lines, lw)
	}
	ps := []panel{load, reps, wait}
	for i := range ps {
		m := 1.0
		for _, l := range ps[i].lines {
			for _, y := range l.ys {
				m = math.Max(m, y)
			}
		}
		ps[i].ymax = niceCeil(m)
	}
	return ps
}

func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func plotH(n int) int { return marginT + n*(panelH+gap) }

// WriteSVG draws load, replicas per policy and queue wait per policy over
// time, calendar events shaded.
func WriteSVG(w io.Writer, r *Report) error {
	ps := panels(r)
	total := r.End.Sub(r.Start).Seconds()
	bw := bufio.NewWriter(w)
	h := plotH(len(ps))
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", plotW, h)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, h)
	fmt.Fprintf(bw, `<text x="%d" y="18" font-size="13">montage-scaler simulate: %s to %s</text>`+"\n", marginL,
		r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339))
	iw := float64(plotW - marginL - marginR)
	ev := colorOf("event")
	for i, p := range ps {
		top := float64(marginT + i*(panelH+gap))
		x := func(s float64) float64 { return float64(marginL) + s/total*iw }
		y := func(v float64) float64 { return top + panelH - v/p.ymax*panelH }
		for _, e := range r.Events {
			a, b := math.Max(0, e.From.Sub(r.Start).Seconds()), math.Min(total, e.Until.Sub(r.Start).Seconds())
			if b > a {
				fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="#%02x%02x%02x" opacity="0.5"><title>%s</title></rect>`+"\n",
					x(a), top, x(b)-x(a), panelH, ev.R, ev.G, ev.B, xmlEscape(e.Summary))
			}
		}
		fmt.Fprintf(bw, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="none" stroke="#999"/>`+"\n", marginL, top, iw, panelH)
		fmt.Fprintf(bw, `<text x="%d" y="%.1f">%s</text>`+"\n", marginL, top-6, xmlEscape(p.title))
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", marginL-6, top+10, p.ymax)
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end">0</text>`+"\n", marginL-6, top+panelH)
		for j, l := range p.lines {
			fmt.Fprintf(bw, `<polyline fill="none" stroke-width="1.5" stroke="#%02x%02x%02x" points="`, l.color.R, l.color.G, l.color.B)
			for k := range l.xs {
				fmt.Fprintf(bw, "%.1f,%.1f ", x(l.xs[k]), y(l.ys[k]))
			}
			fmt.Fprint(bw, `"/>`+"\n")
			ly := top + 14 + float64(j)*16
			fmt.Fprintf(bw, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#%02x%02x%02x" stroke-width="3"/><text x="%d" y="%.1f">%s</text>`+"\n",
				plotW-marginR+10, plotW-marginR+30, ly-4, ly-4, l.color.R, l.color.G, l.color.B, plotW-marginR+36, ly, xmlEscape(l.label))
		}
	}
	bottom := float64(marginT + len(ps)*(panelH+gap) - gap + 14)
	for k := 0; k <= 6; k++ {
		s := total * float64(k) / 6
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", float64(marginL)+s/total*iw, bottom,
			r.Start.Add(time.Duration(s)*time.Second).Format("15:04"))
	}
	fmt.Fprint(bw, "</svg>\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

func xmlEscape(s string) string {
	out := make([]rune, 0, len(s))
	for _, c := range s {
		switch c {
		case '<', '>', '&', '"':
			out = append(out, []rune(fmt.Sprintf("&#%d;", c))...)
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// WritePNG draws the same panels as WriteSVG without text (the standard
// library has no font): each panel's legend is colour swatches in the order
// of the SVG's (tasks, requests; then phase1-hpa, keda-builtin,
// montage-scaler).
func WritePNG(w io.Writer, r *Report) error {
	ps := panels(r)
	total := r.End.Sub(r.Start).Seconds()
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH(len(ps))))
	fill(img, img.Bounds(), color.RGBA{0xff, 0xff, 0xff, 0xff})
	iw := float64(plotW - marginL - marginR)
	for i, p := range ps {
		top := marginT + i*(panelH+gap)
		x := func(s float64) int { return marginL + int(s/total*iw) }
		y := func(v float64) int { return top + panelH - int(v/p.ymax*panelH) }
		for _, e := range r.Events {
			a, b := math.Max(0, e.From.Sub(r.Start).Seconds()), math.Min(total, e.Until.Sub(r.Start).Seconds())
			if b > a {
				fill(img, image.Rect(x(a), top, x(b), top+panelH), colorOf("event"))
			}
		}
		frame := color.RGBA{0x99, 0x99, 0x99, 0xff}
		seg(img, marginL, top, plotW-marginR, top, frame)
		seg(img, marginL, top+panelH, plotW-marginR, top+panelH, frame)
		seg(img, marginL, top, marginL, top+panelH, frame)
		seg(img, plotW-marginR, top, plotW-marginR, top+panelH, frame)
		for j, l := range p.lines {
			for k := 1; k < len(l.xs); k++ {
				seg(img, x(l.xs[k-1]), y(l.ys[k-1]), x(l.xs[k]), y(l.ys[k]), l.color)
			}
			fill(img, image.Rect(plotW-marginR+10, top+6+j*16, plotW-marginR+30, top+10+j*16), l.color)
		}
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		for xx := r.Min.X; xx < r.Max.X; xx++ {
			img.SetRGBA(xx, yy, c)
		}
	}
}

// seg draws a line with Bresenham's algorithm.
func seg(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
