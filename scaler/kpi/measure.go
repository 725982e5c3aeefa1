package kpi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Querier is the part of a Prometheus client a report needs.
type Querier interface {
	Query(ctx context.Context, q string, at time.Time) ([]Sample, error)
	QueryRange(ctx context.Context, q string, from, until time.Time, step time.Duration) ([]Series, error)
}

// Request is what to measure.
type Request struct {
	Target Target
	// Until ends the window; Since is its length.
	Until time.Time
	Since time.Duration
	// LatencyTarget is what "min P95>target" counts against.
	LatencyTarget time.Duration
	// Plot also reads the series of the plot.
	Plot bool
}

// Validate names a request field that makes no sense.
func (r Request) Validate() error {
	switch {
	case r.Since < 5*time.Minute || r.Since > 90*24*time.Hour || r.Since%time.Second != 0:
		return fmt.Errorf("window %s: want whole seconds from 5m to 90 days (2160h)", r.Since)
	case r.LatencyTarget <= 0:
		return fmt.Errorf("latency target %s: want above 0", r.LatencyTarget)
	case r.Until.IsZero():
		return errors.New("no end of window")
	}
	return nil
}

// Figures are the KPIs over the window. JSON names follow simulate's where
// they mean the same.
type Figures struct {
	Namespace    string    `json:"namespace"`
	Deployment   string    `json:"deployment"`
	ScaledObject string    `json:"scaledObject"`
	From         time.Time `json:"from"`
	Until        time.Time `json:"until"`
	// PodHours are the Deployment's pods integrated over the window.
	PodHours float64 `json:"podHours"`
	// Videos is the processed-task counter's increase, rounded (increase()
	// extrapolates to the window's ends).
	Videos int `json:"videos"`
	// CostPerVideo is PodHours / Videos; nil without videos.
	CostPerVideo *float64 `json:"costPerVideo"`
	// LatencyOverTargetMinutes counts 1-minute steps whose 1-minute P95
	// was above the target.
	LatencyOverTargetMinutes int     `json:"latencyOverTargetMinutes"`
	ScaleEventsPerHour       float64 `json:"scaleEventsPerHour"`
	ScaleUps                 int     `json:"scaleUps"`
	ScaleDowns               int     `json:"scaleDowns"`
	// PodStartup* are creation to Ready of the pods Ready in the window;
	// nil when none became Ready.
	PodStartupP50Seconds *float64 `json:"podStartupP50Seconds"`
	PodStartupP95Seconds *float64 `json:"podStartupP95Seconds"`
	// RequestShareMaxOverMean is the busiest pod's request rate over the
	// mean, over 5 minutes, averaged over the window; nil without requests.
	RequestShareMaxOverMean *float64 `json:"requestShareMaxOverMean"`
	LatencyTargetSeconds    float64  `json:"latencyTargetSeconds"`
}

// Report is a measurement: the figures and, when asked for, the plot's
// series.
type Report struct {
	Figures
	Prometheus string    `json:"-"`
	Plot       *PlotData `json:"-"`
	Warnings   []string  `json:"warnings"`
}

// Needed is a series a report cannot do without, and who exports it.
type Needed struct {
	// Series is the selector, as the user would type it into Prometheus.
	Series string
	// Exporter says where it comes from.
	Exporter string
}

// Exporters, for the messages about missing series.
const (
	kubeStateMetrics = "exported by kube-state-metrics v2: is it installed, and does Prometheus scrape it?"
	appMetrics       = "exported by the Montage API's /metrics: is the PodMonitor montage of deploy/monitoring installed?"
	scalerMetrics    = "exported by montage-scaler serve: is the ServiceMonitor montage-scaler of deploy/monitoring installed?"
	scalerProcessed  = "exported by montage-scaler serve from the Celery workers' heartbeats: is the ServiceMonitor montage-scaler installed, and are the workers' heartbeats on?"
)

// needed lists the series the figures (and the plot) read.
func (x queries) needed(plot bool) []Needed {
	out := []Needed{
		{"kube_deployment_spec_replicas" + x.deploymentSel(), kubeStateMetrics},
		{fmt.Sprintf(`kube_replicaset_owner{%s, owner_kind="Deployment", owner_name=%s}`, x.ns(), q(x.t.Deployment)), kubeStateMetrics},
		{fmt.Sprintf(`kube_pod_owner{%s, owner_kind="ReplicaSet"}`, x.ns()), kubeStateMetrics},
		{fmt.Sprintf(`kube_pod_created{%s}`, x.ns()), kubeStateMetrics},
		{fmt.Sprintf(`kube_pod_status_ready_time{%s}`, x.ns()), kubeStateMetrics},
		{fmt.Sprintf(`http_request_duration_seconds_count{%s}`, x.ns()), appMetrics},
		{"montage_scaler_celery_tasks_processed_total" + x.scaledObjectSel(), scalerProcessed},
	}
	if plot {
		out = append(out,
			Needed{"montage_scaler_decision_replicas" + x.scaledObjectSel(), scalerMetrics},
			Needed{"kube_deployment_status_replicas_available" + x.deploymentSel(), kubeStateMetrics},
			Needed{fmt.Sprintf(`http_request_duration_seconds_bucket{%s}`, x.ns()), appMetrics},
		)
	}
	return out
}

// MissingError lists needed series with no sample in the window.
type MissingError struct {
	Prometheus  string
	From, Until time.Time
	Missing     []Needed
}

func (e *MissingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "prometheus %s has no sample from %s to %s of:", e.Prometheus,
		e.From.Format(time.RFC3339), e.Until.Format(time.RFC3339))
	for _, n := range e.Missing {
		fmt.Fprintf(&b, "\n  %s: %s", n.Series, n.Exporter)
	}
	return b.String()
}

// Measure reads the KPIs of r from p (named shown in messages). A
// Prometheus that does not answer is an *UnreachableError; a needed series
// without samples in the window, a *MissingError naming each.
func Measure(ctx context.Context, p Querier, shown string, r Request) (*Report, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	x := newQueries(r.Target, r.Since)
	from := r.Until.Add(-r.Since)
	rep := &Report{Prometheus: shown, Figures: Figures{Namespace: r.Target.Namespace, Deployment: r.Target.Deployment,
		ScaledObject: r.Target.ScaledObject, From: from.UTC(), Until: r.Until.UTC(), LatencyTargetSeconds: r.LatencyTarget.Seconds()}}

	var missing []Needed
	for _, n := range x.needed(r.Plot) {
		v, err := p.Query(ctx, fmt.Sprintf(`count(last_over_time(%s[%s]))`, n.Series, x.w), r.Until)
		if err != nil {
			return nil, err
		}
		if len(v) == 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, &MissingError{Prometheus: shown, From: from, Until: r.Until, Missing: missing}
	}

	one := func(what, query string) (*float64, error) {
		v, err := p.Query(ctx, query, r.Until)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		switch {
		case len(v) == 0:
			return nil, nil
		case len(v) > 1:
			return nil, fmt.Errorf("%s: %d series, want one (two kube-state-metrics or Prometheus jobs with different labels?)", what, len(v))
		case math.IsNaN(v[0].Value) || math.IsInf(v[0].Value, 0):
			return nil, nil
		}
		f := v[0].Value
		return &f, nil
	}
	whole := func(v *float64) int {
		if v == nil {
			return 0
		}
		return int(math.Round(*v))
	}
	var err error
	var ph, vids, ups, downs, over *float64
	steps := []struct {
		what, query string
		dst         **float64
	}{
		{"pod-hours", x.podHours(), &ph},
		{"videos", x.videos(), &vids},
		{"scale ups", x.scaleUps(), &ups},
		{"scale downs", x.scaleDowns(), &downs},
		{"pod start-up p50", x.podStartup(0.5), &rep.PodStartupP50Seconds},
		{"pod start-up p95", x.podStartup(0.95), &rep.PodStartupP95Seconds},
		{"request share", x.requestShare(), &rep.RequestShareMaxOverMean},
		{"minutes over the latency target", x.latencyOverTarget(r.LatencyTarget), &over},
	}
	for _, s := range steps {
		if *s.dst, err = one(s.what, s.query); err != nil {
			return nil, err
		}
	}
	if ph != nil {
		rep.PodHours = *ph
	}
	rep.Videos, rep.ScaleUps, rep.ScaleDowns = whole(vids), whole(ups), whole(downs)
	rep.LatencyOverTargetMinutes = whole(over)
	if rep.Videos > 0 {
		c := rep.PodHours / float64(rep.Videos)
		rep.CostPerVideo = &c
	} else {
		rep.Warnings = append(rep.Warnings, "no video processed in the window: no cost per video")
	}
	rep.ScaleEventsPerHour = float64(rep.ScaleUps+rep.ScaleDowns) / r.Since.Hours()
	if r.Plot {
		if rep.Plot, err = plotData(ctx, p, x, from, r.Until, r.LatencyTarget); err != nil {
			return nil, err
		}
		if !rep.Plot.QueueDepth {
			rep.Warnings = append(rep.Warnings, "the scaler exports no queue depth (montage_scaler_celery_queued_tasks): the plot shows the celery component's ask instead")
		}
	}
	return rep, nil
}
