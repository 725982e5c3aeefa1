package latency

import (
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
)

// Name is the component's name.
const Name = "latency"

// Component describes the latency component: the API's P95 against
// latencyTarget, from Prometheus or the pods' own /metrics.
var Component = component.Component{
	Name: Name,
	Keys: Keys(),
	Parse: func(m *meta.Map, c component.Context) (component.Config, error) {
		cfg, err := ParseConfig(m, c.ReplicaLookup)
		if cfg == nil || err != nil {
			return nil, err
		}
		return cfg, nil
	},
	Configures: "prometheusURL or metricsURLs",
	Replay:     replay,
}

// replay is the opinion on the simulator's P95 at its current replicas.
func replay(c component.Config, w component.World) (decide.Opinion, error) {
	return decide.LatencyOpinion(decide.LatencyEvidence{P95: w.P95, CurrentReplicas: w.Current}, c.(*Config).Target, nil)
}
