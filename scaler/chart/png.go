package chart

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// WritePNG draws the chart as a PNG: the SVG's layout, its text set in Go
// Regular and Go Bold, its lines anti-aliased.
func (c *Chart) WritePNG(w io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	p, err := newPainter(width, c.height())
	if err != nil {
		return err
	}
	defer p.close()
	black, grey, grid, frame := color.RGBA{0x11, 0x11, 0x11, 0xff}, color.RGBA{0x33, 0x33, 0x33, 0xff},
		color.RGBA{0xe5, 0xe5, 0xe5, 0xff}, color.RGBA{0x88, 0x88, 0x88, 0xff}

	p.text(p.title, c.Title, marginLeft, 30, alignLeft, black)
	ticks := c.xTicks()
	for i := range c.Panels {
		pn := &c.Panels[i]
		top := panelTop(i)
		ymax := pn.yMax()
		for _, b := range c.Bands {
			a, z := c.clip(b.From), c.clip(b.Until)
			if z > a {
				p.fill(image.Rect(int(math.Round(a)), top, int(math.Round(z)), top+panelHeight), shade(BandColor, 0x73))
			}
		}
		for _, v := range yTicks(ymax) {
			y := top + panelHeight - int(math.Round(v/ymax*panelHeight))
			p.fill(image.Rect(marginLeft, y, marginLeft+plotWidth, y+1), grid)
			p.text(p.regular, tickLabel(v), marginLeft-6, y+4, alignRight, grey)
		}
		for _, t := range ticks {
			x := int(math.Round(c.x(t.t)))
			p.fill(image.Rect(x, top, x+1, top+panelHeight), grid)
		}
		p.frame(image.Rect(marginLeft, top, marginLeft+plotWidth, top+panelHeight), frame)
		p.text(p.bold, pn.Title, marginLeft, top-8, alignLeft, black)
		p.textUp(p.regular, pn.YLabel, 20, top+panelHeight/2, grey)
		for j, s := range pn.Series {
			for _, path := range c.polyline(s, top, ymax) {
				if s.Dashed {
					path = dashes(path, 6, 4)
				}
				p.stroke(path, s.Dashed, 2, seriesColor(s, j))
			}
		}
		for j, e := range c.legend(i) {
			ly := top + 12 + j*legendLine
			lx := marginLeft + plotWidth + 12
			if e.band {
				p.fill(image.Rect(lx, ly-8, lx+22, ly+2), shade(BandColor, 0x99))
			} else {
				seg := [][2]float64{{float64(lx), float64(ly) - 3}, {float64(lx + 22), float64(ly) - 3}}
				if e.dashed {
					seg = dashes(seg, 6, 4)
				}
				p.stroke(seg, e.dashed, 3, e.color)
			}
			p.text(p.regular, e.label, lx+28, ly+1, alignLeft, black)
		}
	}
	bottom := panelTop(len(c.Panels)-1) + panelHeight
	for _, t := range ticks {
		p.text(p.regular, t.label, int(math.Round(c.x(t.t))), bottom+18, alignCenter, grey)
	}
	p.text(p.regular, c.xLabel(), marginLeft+plotWidth/2, bottom+42, alignCenter, grey)
	if err := png.Encode(w, p.img); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

type align int

const (
	alignLeft align = iota
	alignCenter
	alignRight
)

// painter draws on an RGBA image with three faces of the Go fonts.
type painter struct {
	img                  *image.RGBA
	regular, bold, title font.Face
	raster               *vector.Rasterizer
}

func newPainter(w, h int) (*painter, error) {
	reg, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("chart: Go Regular: %w", err)
	}
	bold, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("chart: Go Bold: %w", err)
	}
	face := func(f *opentype.Font, size float64) (font.Face, error) {
		return opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	}
	p := &painter{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	if p.regular, err = face(reg, 12); err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	if p.bold, err = face(bold, 13); err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	if p.title, err = face(bold, 16); err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	draw.Draw(p.img, p.img.Bounds(), image.White, image.Point{}, draw.Src)
	return p, nil
}

func (p *painter) close() {
	for _, f := range []font.Face{p.regular, p.bold, p.title} {
		if f != nil {
			f.Close()
		}
	}
}

// text draws s with its baseline at y, anchored at x.
func (p *painter) text(face font.Face, s string, x, y int, a align, c color.Color) {
	if s == "" {
		return
	}
	d := font.Drawer{Dst: p.img, Src: image.NewUniform(c), Face: face}
	w := d.MeasureString(s).Round()
	switch a {
	case alignCenter:
		x -= w / 2
	case alignRight:
		x -= w
	}
	d.Dot = fixed.P(x, y)
	d.DrawString(s)
}

// textUp draws s turned a quarter left (read bottom to top), centred on
// (cx, cy): a y-axis label.
func (p *painter) textUp(face font.Face, s string, cx, cy int, c color.Color) {
	if s == "" {
		return
	}
	m := face.Metrics()
	w := font.MeasureString(face, s).Ceil()
	h := (m.Ascent + m.Descent).Ceil()
	flat := image.NewRGBA(image.Rect(0, 0, w, h))
	d := font.Drawer{Dst: flat, Src: image.NewUniform(c), Face: face, Dot: fixed.Point26_6{X: 0, Y: m.Ascent}}
	d.DrawString(s)
	up := image.NewRGBA(image.Rect(0, 0, h, w))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			up.SetRGBA(y, w-1-x, flat.RGBAAt(x, y))
		}
	}
	r := image.Rect(cx-h/2, cy-w/2, cx-h/2+h, cy-w/2+w)
	draw.Draw(p.img, r, up, image.Point{}, draw.Over)
}

// fill paints r with c, blended over what is there.
func (p *painter) fill(r image.Rectangle, c color.Color) {
	draw.Draw(p.img, r.Intersect(p.img.Bounds()), image.NewUniform(c), image.Point{}, draw.Over)
}

func (p *painter) frame(r image.Rectangle, c color.Color) {
	p.fill(image.Rect(r.Min.X, r.Min.Y, r.Max.X+1, r.Min.Y+1), c)
	p.fill(image.Rect(r.Min.X, r.Max.Y, r.Max.X+1, r.Max.Y+1), c)
	p.fill(image.Rect(r.Min.X, r.Min.Y, r.Min.X+1, r.Max.Y+1), c)
	p.fill(image.Rect(r.Max.X, r.Min.Y, r.Max.X+1, r.Max.Y+1), c)
}

// stroke draws a polyline (or, separate, pairs of points: dashes) of width
// lw, anti-aliased. Every segment is a quadrilateral of the same winding, so
// their overlaps at the joints add up instead of cancelling. The rasterizer
// covers only the line's bounding box: it sums coverage across its whole
// buffer, row after row, so its cost and any rounding it leaves stay there
// instead of reaching every pixel below the line.
func (p *painter) stroke(path [][2]float64, separate bool, lw float64, c color.Color) {
	if len(path) < 2 {
		return
	}
	box := bounds(path, lw).Intersect(p.img.Bounds())
	if box.Empty() {
		return
	}
	if p.raster == nil {
		p.raster = vector.NewRasterizer(box.Dx(), box.Dy())
	} else {
		p.raster.Reset(box.Dx(), box.Dy())
	}
	z := p.raster
	ox, oy := float64(box.Min.X), float64(box.Min.Y)
	step := 1
	if separate {
		step = 2
	}
	for k := 0; k+1 < len(path); k += step {
		a, b := path[k], path[k+1]
		dx, dy := b[0]-a[0], b[1]-a[1]
		n := math.Hypot(dx, dy)
		if n == 0 {
			dx, dy, n = 1, 0, 1 // a dot: a square of the line's width
			a[0] -= lw / 2
			b[0] += lw / 2
		}
		// The normal, half a line width long; the ends are extended by as
		// much so that joints have no notch.
		nx, ny := -dy/n*lw/2, dx/n*lw/2
		ex, ey := dx/n*lw/2, dy/n*lw/2
		a0, a1 := [2]float64{a[0] - ex, a[1] - ey}, [2]float64{b[0] + ex, b[1] + ey}
		z.MoveTo(float32(a0[0]+nx-ox), float32(a0[1]+ny-oy))
		z.LineTo(float32(a1[0]+nx-ox), float32(a1[1]+ny-oy))
		z.LineTo(float32(a1[0]-nx-ox), float32(a1[1]-ny-oy))
		z.LineTo(float32(a0[0]-nx-ox), float32(a0[1]-ny-oy))
		z.ClosePath()
	}
	z.DrawOp = draw.Over
	z.Draw(p.img, box, image.NewUniform(c), image.Point{})
}

// bounds is the pixel box of a line of width lw through path, its ends
// extended as stroke extends them.
func bounds(path [][2]float64, lw float64) image.Rectangle {
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, pt := range path {
		x0, x1 = math.Min(x0, pt[0]), math.Max(x1, pt[0])
		y0, y1 = math.Min(y0, pt[1]), math.Max(y1, pt[1])
	}
	// A corner of a segment's quadrilateral (a dot's too) is at most a
	// width from its point; a pixel more for the anti-aliased edge.
	m := lw + 1
	return image.Rect(int(math.Floor(x0-m)), int(math.Floor(y0-m)), int(math.Ceil(x1+m)), int(math.Ceil(y1+m)))
}

// dashes cuts a polyline into on/off pieces along its length, returned as
// pairs of points.
func dashes(path [][2]float64, on, off float64) [][2]float64 {
	var out [][2]float64
	drawing := true
	left := on
	for k := 0; k+1 < len(path); k++ {
		a, b := path[k], path[k+1]
		l := math.Hypot(b[0]-a[0], b[1]-a[1])
		for t := 0.0; t < l; {
			d := math.Min(left, l-t)
			if drawing {
				f0, f1 := t/l, (t+d)/l
				out = append(out, [2]float64{a[0] + (b[0]-a[0])*f0, a[1] + (b[1]-a[1])*f0},
					[2]float64{a[0] + (b[0]-a[0])*f1, a[1] + (b[1]-a[1])*f1})
			}
			t += d
			left -= d
			if left <= 1e-9 {
				drawing = !drawing
				left = off
				if drawing {
					left = on
				}
			}
		}
	}
	return out
}

// shade is c with alpha a, premultiplied.
func shade(c color.RGBA, a uint8) color.RGBA {
	f := float64(a) / 255
	return color.RGBA{uint8(float64(c.R) * f), uint8(float64(c.G) * f), uint8(float64(c.B) * f), a}
}
