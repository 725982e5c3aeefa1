package simulate

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
)

// The plot names what it shows: its title, the panels, their axes and every
// policy, in SVG and (set in the Go fonts) in PNG.
func TestPlotsNameEveryPolicyAndAxis(t *testing.T) {
	r := example(t, "weekend-batch")
	var svg, pngb bytes.Buffer
	if err := WriteSVG(&svg, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"montage-scaler simulate: 2026-03-07 09:00 to 2026-03-07 13:00 UTC", ">load<", ">replicas<",
		">oldest queued task's wait<", ">seconds<", ">per minute<", ">calendar window<", "time (UTC), Sat 7 Mar 2026",
		">" + Phase1HPA + "<", ">" + KEDABuiltin + "<", ">" + MontageScaler + "<"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if err := WritePNG(&pngb, r); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pngb)
	if err != nil {
		t.Fatal(err)
	}
	// The title's line holds dark text pixels (the PNG had none before).
	dark := 0
	for y := 10; y < 36; y++ {
		for x := 80; x < 600; x++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r < 0x4000 && g < 0x4000 && b < 0x4000 {
				dark++
			}
		}
	}
	if dark < 200 {
		t.Errorf("%d dark pixels on the title's line: no title text", dark)
	}
}
