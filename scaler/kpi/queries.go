// Package kpi measures ADR-0002's KPIs (docs/adr-0002.md) of one Deployment from Prometheus,
// over any window: the same definitions as the recording rules of
// deploy/monitoring/prometheusrule.yaml (montage:*), which fix the window
// (1 h, 24 h), computed here from the raw series — kube-state-metrics v2,
// the API's request histogram and the scaler's processed-task counter — so
// that a report needs no rule installed and no rule history. Its figures
// carry the column names of the simulator's (scaler/simulate), so that what
// simulate predicts and what a cluster measured read side by side.
package kpi

import (
	"fmt"
	"strconv"
	"time"
)

// Target is the Deployment measured and the ScaledObject that scales it.
type Target struct {
	Namespace, Deployment, ScaledObject string
}

// queries are the PromQL of one report: a Target over a window ending at
// the report's instant.
type queries struct {
	t Target
	// w is the window as a PromQL duration, secs in seconds.
	w    string
	secs int64
}

func newQueries(t Target, window time.Duration) queries {
	s := int64(window / time.Second)
	return queries{t: t, w: strconv.FormatInt(s, 10) + "s", secs: s}
}

// q quotes a label value for PromQL (Go's escapes are PromQL's).
func q(v string) string { return strconv.Quote(v) }

func (x queries) ns() string { return "namespace=" + q(x.t.Namespace) }

// deploymentSel selects the Deployment's kube-state-metrics series.
func (x queries) deploymentSel() string {
	return fmt.Sprintf(`{%s, deployment=%s}`, x.ns(), q(x.t.Deployment))
}

// scaledObjectSel selects the scaler's series for the ScaledObject.
func (x queries) scaledObjectSel() string {
	return fmt.Sprintf(`{%s, scaledobject=%s}`, x.ns(), q(x.t.ScaledObject))
}

// owners maps each pod of the Deployment to it through its ReplicaSet; over
// the window when overWindow (pods deleted since included), else now.
func (x queries) owners(overWindow bool) string {
	pod := fmt.Sprintf(`kube_pod_owner{%s, owner_kind="ReplicaSet"}`, x.ns())
	rs := fmt.Sprintf(`kube_replicaset_owner{%s, owner_kind="Deployment", owner_name=%s}`, x.ns(), q(x.t.Deployment))
	if overWindow {
		pod = fmt.Sprintf(`max_over_time(%s[%s])`, pod, x.w)
		rs = fmt.Sprintf(`max_over_time(%s[%s])`, rs, x.w)
	}
	return fmt.Sprintf(`max by (namespace, pod, deployment) (
    label_replace(%s, "replicaset", "$1", "owner_name", "(.*)")
  * on (namespace, replicaset) group_left (deployment)
    max by (namespace, replicaset, deployment) (label_replace(%s, "deployment", "$1", "owner_name", "(.*)"))
)`, pod, rs)
}

// scaleUps and scaleDowns count spec.replicas going up and down between two
// scrapes (montage:deployment_scale_{ups,downs}:increase1h).
func (x queries) scaleUps() string {
	s := "kube_deployment_spec_replicas" + x.deploymentSel()
	return fmt.Sprintf(`max(changes(%s[%s]) - resets(%s[%s]))`, s, x.w, s, x.w)
}

func (x queries) scaleDowns() string {
	return fmt.Sprintf(`max(resets(kube_deployment_spec_replicas%s[%s]))`, x.deploymentSel(), x.w)
}

// podStartup is the quantile phi of creation to first Ready of the pods
// Ready in the window (montage:pod_startup_seconds:p50_24h, p95_24h).
func (x queries) podStartup(phi float64) string {
	return fmt.Sprintf(`quantile(%g,
    (
        max by (namespace, pod) (min_over_time(kube_pod_status_ready_time{%s}[%s]) > time() - %d)
      - on (namespace, pod)
        max by (namespace, pod) (max_over_time(kube_pod_created{%s}[%s]))
    )
  * on (namespace, pod) group_left (deployment)
    %s
)`, phi, x.ns(), x.w, x.secs, x.ns(), x.w, x.owners(true))
}

// podHours integrates the Deployment's pods, creation (or the window's
// start) to last scrape (montage:pod_hours:24h).
func (x queries) podHours() string {
	return fmt.Sprintf(`sum(
    clamp_min(
        max by (namespace, pod) (
            timestamp(kube_pod_created{%s})
          or
            max_over_time(timestamp(kube_pod_created{%s})[%s:30s])
        )
      - on (namespace, pod)
        max by (namespace, pod) (clamp_min(max_over_time(kube_pod_created{%s}[%s]), time() - %d))
    , 0)
  * on (namespace, pod) group_left (deployment)
    %s
) / 3600`, x.ns(), x.ns(), x.w, x.ns(), x.w, x.secs, x.owners(true))
}

// videos is the processed-task counter's increase, the largest of the scaler
// replicas' (montage:videos_processed:increase24h).
func (x queries) videos() string {
	return fmt.Sprintf(`max(increase(montage_scaler_celery_tasks_processed_total%s[%s]))`, x.scaledObjectSel(), x.w)
}

// requestShareNow is montage:pod_request_share:max_over_mean_5m for the
// Deployment.
func (x queries) requestShareNow() string {
	rates := fmt.Sprintf(`(
    sum by (namespace, pod) (rate(http_request_duration_seconds_count{%s}[5m]))
  * on (namespace, pod) group_left (deployment)
    %s
)`, x.ns(), x.owners(false))
	return fmt.Sprintf(`max(%s) / (avg(%s) > 0)`, rates, rates)
}

// requestShare is its mean over the window, one value a minute.
func (x queries) requestShare() string {
	return fmt.Sprintf(`avg_over_time((%s)[%s:1m])`, x.requestShareNow(), x.w)
}

// p95 is the API's P95 over the last minute, as the latency component reads
// it (montage:http_request_duration_seconds:p95 for namespace montage).
func (x queries) p95() string {
	return fmt.Sprintf(`histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{%s}[1m])))`, x.ns())
}

// latencyOverTarget counts the minutes of the window whose P95 was above
// target, like simulate's "min P95>target".
func (x queries) latencyOverTarget(target time.Duration) string {
	return fmt.Sprintf(`count_over_time((%s > %g)[%s:1m])`, x.p95(), target.Seconds(), x.w)
}

// Plot series.
func (x queries) decision() string {
	return "max(montage_scaler_decision_replicas" + x.scaledObjectSel() + ")"
}
func (x queries) specReplicas() string {
	return "max(kube_deployment_spec_replicas" + x.deploymentSel() + ")"
}
func (x queries) availableReplicas() string {
	return "max(kube_deployment_status_replicas_available" + x.deploymentSel() + ")"
}
func (x queries) queued() string {
	return "max(montage_scaler_celery_queued_tasks" + x.scaledObjectSel() + ")"
}
func (x queries) inFlight() string {
	return "max(montage_scaler_celery_in_flight_tasks" + x.scaledObjectSel() + ")"
}
func (x queries) componentAsk(component string) string {
	return fmt.Sprintf(`max(montage_scaler_component_replicas{%s, scaledobject=%s, component=%s})`, x.ns(), q(x.t.ScaledObject), q(component))
}
