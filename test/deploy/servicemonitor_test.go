package deploy

import (
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// The scaler labels its per-ScaledObject series with the ScaledObject's
// namespace; the ServiceMonitor must keep that label rather than rename it
// exported_namespace, or every rule on namespace="montage" matches nothing.
func TestServiceMonitorKeepsTheScalersNamespaceLabel(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	sm := get[monitoringv1.ServiceMonitor](t, o, "ServiceMonitor", ns, "montage-scaler")
	for i, e := range sm.Spec.Endpoints {
		if !e.HonorLabels {
			t.Errorf("ServiceMonitor endpoint %d: honorLabels false, want true", i)
		}
	}
}
