package simulate

import (
	"fmt"
	"math"
	"time"

	"github.com/montage/montage-scaler/scaler/simulate/hpa"
)

// builtin is KEDA's own triggers: redis listLength (one trigger per queue
// of the trace, each on its queue's list only, target tasksPerReplica: the
// HPA takes the largest), prometheus (the P95, threshold
// latencyTarget, ignoreNullValues: no data reads 0), and one cron trigger
// per calendar event from its start to its end (desiredReplicas the
// event's replicas; 1 outside).
func (p *kedaPolicy) builtin(now time.Time, o observation, current int32) ([]hpa.Metric, bool) {
	tpr := p.s.TasksPerReplica
	if tpr <= 0 {
		tpr = 5
	}
	var ms []hpa.Metric
	for i, n := range o.queuedBy {
		ms = append(ms, hpa.Metric{Name: fmt.Sprintf("s%d-redis", i), Kind: hpa.External, Target: tpr, Value: float64(n)})
	}
	active := o.queued > 0
	if p.s.Latency != nil {
		v := o.p95
		if math.IsNaN(v) {
			v = 0
		}
		ms = append(ms, hpa.Metric{Name: "s1-prometheus", Kind: hpa.External, Target: p.s.Latency.Target.Seconds(), Value: v})
		active = active || v > 0
	}
	if len(p.s.Windows) > 0 {
		v := 1.0
		for _, w := range p.s.Windows {
			if !now.Before(w.Start) && now.Before(w.End) {
				v = math.Max(v, math.Ceil(w.Replicas))
				active = true
			}
		}
		ms = append(ms, hpa.Metric{Name: "s2-cron", Kind: hpa.External, Target: 1, Value: v})
	}
	return ms, active
}
