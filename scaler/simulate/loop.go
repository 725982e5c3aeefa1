package simulate

import (
	"fmt"
	"time"

	"github.com/montage/montage-scaler/scaler/simulate/hpa"
)

// Loop is the timing of the control loop around the policies: what a
// cluster's controllers and metrics pipeline set, and what the model fixed
// before it could be set. The zero Loop is that fixed model: 15 s HPA syncs,
// the ScaledObject's pollingInterval, fresh metrics at every sync and
// cpu/memory utilisation read as it is.
type Loop struct {
	// HPASync is the HPA controller's sync period
	// (--horizontal-pod-autoscaler-sync-period); zero: hpa.SyncPeriod.
	HPASync time.Duration
	// Polling replaces the ScaledObject's pollingInterval (30 s for a flat
	// map); zero: the metadata file's.
	Polling time.Duration
	// CachedMetrics is the triggers' useCachedMetrics: an HPA sync between
	// two polls reads the metric KEDA read at its last poll instead of
	// asking the scaler afresh.
	CachedMetrics bool
	// ResourceLag is how old the cpu/memory utilisation the HPA reads is
	// (metrics-server's scrape period and window); zero: none.
	ResourceLag time.Duration
}

// DefaultLoop is the zero Loop written out: the values a command shows as
// its flags' defaults.
func DefaultLoop() Loop { return Loop{HPASync: hpa.SyncPeriod} }

// Validate names a period the model cannot run: the model advances one
// second at a time.
func (l Loop) Validate() error {
	for _, d := range []struct {
		name     string
		v, limit time.Duration
	}{
		{"HPA sync period", l.HPASync, 10 * time.Minute},
		{"polling interval", l.Polling, time.Hour},
		{"resource metrics lag", l.ResourceLag, 10 * time.Minute},
	} {
		if d.v < 0 || d.v > d.limit || d.v%time.Second != 0 {
			return fmt.Errorf("loop: %s %s: want whole seconds from 0 to %s", d.name, d.v, d.limit)
		}
	}
	return nil
}

// syncSeconds is the HPA's sync period in seconds.
func (l Loop) syncSeconds() int {
	if l.HPASync <= 0 {
		return int(hpa.SyncPeriod / time.Second)
	}
	return int(l.HPASync / time.Second)
}

// pollSeconds is KEDA's polling interval in seconds: l.Polling, else the
// ScaledObject's, else KEDA's default.
func (l Loop) pollSeconds(k KEDASettings) int {
	p := k.PollingInterval
	if l.Polling > 0 {
		p = l.Polling
	}
	if p < time.Second {
		return 30
	}
	return int(p / time.Second)
}

// lagged keeps the last seconds of cpu/memory utilisation so that the HPA
// reads them lag seconds late; before the trace has run that long it reads
// the first second's.
type lagged struct {
	ring []usage
}

type usage struct{ cpu, mem float64 }

func newLagged(lag time.Duration) *lagged {
	return &lagged{ring: make([]usage, int(lag/time.Second)+1)}
}

// at records second sec's utilisation and returns the one lag seconds
// before it.
func (l *lagged) at(sec int, u usage) usage {
	n := len(l.ring)
	l.ring[sec%n] = u
	return l.ring[max(0, sec-n+1)%n]
}
