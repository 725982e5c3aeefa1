package chart

import (
	"bufio"
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"
	"time"
)

// WriteSVG draws the chart as SVG.
func (c *Chart) WriteSVG(w io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	h := c.height()
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Go, DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, h, width, h)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, h)
	fmt.Fprintf(bw, `<text x="%d" y="30" font-size="16" font-weight="bold">%s</text>`+"\n", marginLeft, esc(c.Title))
	ticks := c.xTicks()
	for i := range c.Panels {
		p := &c.Panels[i]
		top := panelTop(i)
		ymax := p.yMax()
		fmt.Fprintf(bw, `<g class="panel">`+"\n")
		for _, b := range c.Bands {
			a, z := c.clip(b.From), c.clip(b.Until)
			if z > a {
				fmt.Fprintf(bw, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" opacity="0.45"><title>%s</title></rect>`+"\n",
					a, top, z-a, panelHeight, hex(BandColor), esc(b.Label))
			}
		}
		for _, v := range yTicks(ymax) {
			y := float64(top) + panelHeight - v/ymax*panelHeight
			fmt.Fprintf(bw, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", marginLeft, marginLeft+plotWidth, y, y)
			fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end" fill="#333">%s</text>`+"\n", marginLeft-6, y+4, tickLabel(v))
		}
		for _, t := range ticks {
			x := c.x(t.t)
			fmt.Fprintf(bw, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#e5e5e5"/>`+"\n", x, x, top, top+panelHeight)
		}
		fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", marginLeft, top, plotWidth, panelHeight)
		fmt.Fprintf(bw, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", marginLeft, top-8, esc(p.Title))
		cy := top + panelHeight/2
		fmt.Fprintf(bw, `<text x="20" y="%d" text-anchor="middle" transform="rotate(-90 20 %d)" fill="#333">%s</text>`+"\n", cy, cy, esc(p.YLabel))
		for j, s := range p.Series {
			col := hex(seriesColor(s, j))
			dash := ""
			if s.Dashed {
				dash = ` stroke-dasharray="6 4"`
			}
			for _, path := range c.polyline(s, top, ymax) {
				fmt.Fprintf(bw, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="`, col, dash)
				for k, pt := range path {
					if k > 0 {
						bw.WriteByte(' ')
					}
					fmt.Fprintf(bw, "%.1f,%.1f", pt[0], pt[1])
				}
				fmt.Fprint(bw, `"/>`+"\n")
			}
		}
		for j, e := range c.legend(i) {
			ly := top + 12 + j*legendLine
			lx := marginLeft + plotWidth + 12
			if e.band {
				fmt.Fprintf(bw, `<rect x="%d" y="%d" width="22" height="10" fill="%s" opacity="0.6"/>`, lx, ly-8, hex(BandColor))
			} else {
				dash := ""
				if e.dashed {
					dash = ` stroke-dasharray="6 4"`
				}
				fmt.Fprintf(bw, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"%s/>`, lx, lx+22, ly-3, ly-3, hex(e.color), dash)
			}
			fmt.Fprintf(bw, `<text x="%d" y="%d">%s</text>`+"\n", lx+28, ly+1, esc(e.label))
		}
		fmt.Fprint(bw, "</g>\n")
	}
	bottom := panelTop(len(c.Panels)-1) + panelHeight
	for _, t := range ticks {
		fmt.Fprintf(bw, `<text x="%.1f" y="%d" text-anchor="middle" fill="#333">%s</text>`+"\n", c.x(t.t), bottom+18, esc(t.label))
	}
	fmt.Fprintf(bw, `<text x="%d" y="%d" text-anchor="middle" fill="#333">%s</text>`+"\n", marginLeft+plotWidth/2, bottom+42, esc(c.xLabel()))
	fmt.Fprint(bw, "</svg>\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

// legendEntry is one line of a panel's legend.
type legendEntry struct {
	label  string
	color  color.RGBA
	dashed bool
	band   bool
}

func (c *Chart) legend(i int) []legendEntry {
	var out []legendEntry
	for j, s := range c.Panels[i].Series {
		out = append(out, legendEntry{label: s.Label, color: seriesColor(s, j), dashed: s.Dashed})
	}
	if i == 0 && c.BandLegend != "" && len(c.Bands) > 0 {
		out = append(out, legendEntry{label: c.BandLegend, band: true})
	}
	return out
}

// clip maps an instant to a pixel column, clamped to the plot area.
func (c *Chart) clip(t time.Time) float64 {
	return math.Min(math.Max(c.x(t), marginLeft), marginLeft+plotWidth)
}

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func esc(s string) string { return escaper.Replace(s) }
