package main

import (
	"fmt"
	"io"

	"github.com/montage/montage-scaler/scaler/simulate"
)

// emitted checks --emit-policy: only the scaler's policies export the
// scaler's series.
func emitted(policy string) (string, error) {
	if policy != simulate.MontageScaler && policy != simulate.MontageForecast {
		return "", fmt.Errorf("--emit-policy %q: want %s or %s (the policies montage-scaler's metrics exist under)",
			policy, simulate.MontageScaler, simulate.MontageForecast)
	}
	return policy, nil
}

// writeOpenMetrics writes the recorded policy's timeline to path.
func writeOpenMetrics(path string, rep *simulate.Report, n simulate.Names) error {
	var tl *simulate.Timeline
	for _, r := range rep.Results {
		if r.Timeline != nil {
			tl = r.Timeline
		}
	}
	if tl == nil {
		return fmt.Errorf("the --emit-policy was not among the policies run (--policies)")
	}
	return writeFileWith(path, func(w io.Writer) error { return simulate.WriteOpenMetrics(w, tl, n) })
}
