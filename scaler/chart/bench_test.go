package chart

import (
	"image"
	"image/png"
	"io"
	"testing"
	"time"
)

// countingWriter counts what a chart writes.
type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkLongTrace draws six weeks sampled every 30 s (longTrace) as PNG
// and as SVG. The floor, measured in the same loop, is encoding a blank PNG
// of the chart's size: work that no change to the drawing removes.
func BenchmarkLongTrace(b *testing.B) {
	c, _ := longTrace()
	blank := image.NewRGBA(image.Rect(0, 0, width, c.height()))
	var pngTime, svgTime, floorTime time.Duration
	var svg countingWriter
	for b.Loop() {
		t0 := time.Now()
		if err := c.WritePNG(io.Discard); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		svg.n = 0
		if err := c.WriteSVG(&svg); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := png.Encode(io.Discard, blank); err != nil {
			b.Fatal(err)
		}
		pngTime += t1.Sub(t0)
		svgTime += t2.Sub(t1)
		floorTime += time.Since(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(pngTime.Microseconds())/1000/n, "ms/png")
	b.ReportMetric(float64(svgTime.Microseconds())/1000/n, "ms/svg")
	b.ReportMetric(float64(floorTime.Microseconds())/1000/n, "ms/floor")
	b.ReportMetric(float64(pngTime)/float64(floorTime), "png/floor")
	b.ReportMetric(float64(svgTime)/float64(floorTime), "svg/floor")
	b.ReportMetric(float64(svg.n), "svg-bytes")
}
