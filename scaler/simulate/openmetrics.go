package simulate

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Names are the objects a Timeline's series are labelled with.
type Names struct {
	Namespace, Deployment, ScaledObject string
}

// NamesOf reads them from a metadata file: a ScaledObject's namespace, name
// and scaleTargetRef; deploy/'s montage/montage otherwise.
func NamesOf(metadataFile []byte) Names {
	n := Names{Namespace: "montage", Deployment: "montage", ScaledObject: "montage"}
	var doc struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Spec struct {
			ScaleTargetRef struct {
				Name string `json:"name"`
			} `json:"scaleTargetRef"`
		} `json:"spec"`
	}
	if yaml.Unmarshal(metadataFile, &doc) != nil || doc.Kind != "ScaledObject" {
		return n
	}
	if doc.Metadata.Namespace != "" {
		n.Namespace = doc.Metadata.Namespace
	}
	if doc.Metadata.Name != "" {
		n.ScaledObject = doc.Metadata.Name
	}
	n.Deployment = n.ScaledObject
	if doc.Spec.ScaleTargetRef.Name != "" {
		n.Deployment = doc.Spec.ScaleTargetRef.Name
	}
	return n
}

// Scrape targets' labels, as Prometheus (Operator) would add them.
const (
	ksmJob      = "kube-state-metrics"
	ksmInstance = "10.96.0.20:8080"
	scalerJob   = "montage-scaler-metrics"
)

// scalerReplicas are deploy/'s two scaler pods: each exports the same
// figures, which the rules and the report take the max of.
var scalerReplicas = []string{"montage-scaler-7c9d4b5f6-2xkqp", "montage-scaler-7c9d4b5f6-9wzrt"}

// WriteOpenMetrics writes, in OpenMetrics text for `promtool tsdb
// create-blocks-from openmetrics`, the series a cluster would have exported
// while tl was simulated:
//
//   - kube-state-metrics v2: kube_deployment_spec_replicas,
//     kube_deployment_status_replicas, kube_deployment_status_replicas_available,
//     kube_replicaset_owner, kube_pod_owner, kube_pod_created,
//     kube_pod_status_ready_time (one ReplicaSet; pods named like the
//     ReplicaSet controller names them);
//   - the API's histogram http_request_duration_seconds per pod, from its
//     Ready until it is gone (the model's latency: exponential with the
//     P95 of the second);
//   - the scaler's montage_scaler_decision_replicas,
//     montage_scaler_component_replicas, montage_scaler_forecast_replicas,
//     montage_scaler_celery_tasks_processed_total and the queue gauges
//     (montage_scaler_celery_queued_tasks,
//     montage_scaler_celery_in_flight_tasks,
//     montage_scaler_celery_oldest_wait_seconds of the model's one queue,
//     labelled queue="celery"), from two scaler replicas.
//
// Series end without a staleness marker (OpenMetrics text has none): a
// deleted pod's series stop at its last scrape before it is gone.
func WriteOpenMetrics(w io.Writer, tl *Timeline, n Names) error {
	if tl == nil || len(tl.Times) == 0 {
		return fmt.Errorf("openmetrics: no timeline recorded")
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &omWriter{w: bw, tl: tl}
	rs := replicaSetName(n.Deployment)
	seed := tl.Start.Unix()
	dep := lbl("namespace", n.Namespace, "deployment", n.Deployment, "job", ksmJob, "instance", ksmInstance)
	all := func(int) bool { return true }

	e.family("kube_deployment_spec_replicas", "gauge")
	e.series("kube_deployment_spec_replicas", dep, all, func(k int) float64 { return float64(tl.Spec[k]) })
	e.family("kube_deployment_status_replicas", "gauge")
	e.series("kube_deployment_status_replicas", dep, all, func(k int) float64 { return float64(tl.pods(k, false)) })
	e.family("kube_deployment_status_replicas_available", "gauge")
	e.series("kube_deployment_status_replicas_available", dep, all, func(k int) float64 { return float64(tl.pods(k, true)) })
	e.family("kube_replicaset_owner", "gauge")
	e.series("kube_replicaset_owner", lbl("namespace", n.Namespace, "replicaset", rs, "owner_kind", "Deployment",
		"owner_name", n.Deployment, "owner_is_controller", "true", "job", ksmJob, "instance", ksmInstance), all, one)

	podLabels := func(i int, extra ...string) string {
		return lbl(append([]string{"namespace", n.Namespace, "pod", podName(rs, seed, i), "uid", podUID(seed, i)}, extra...)...) + "," +
			lbl("job", ksmJob, "instance", ksmInstance)
	}
	e.family("kube_pod_owner", "gauge")
	for i, p := range tl.Pods {
		e.series("kube_pod_owner", podLabels(i, "owner_kind", "ReplicaSet", "owner_name", rs, "owner_is_controller", "true"),
			tl.exists(p), one)
	}
	e.family("kube_pod_created", "gauge")
	for i, p := range tl.Pods {
		created := math.Floor(tl.unix(p.Created))
		e.series("kube_pod_created", podLabels(i), tl.exists(p), func(int) float64 { return created })
	}
	e.family("kube_pod_status_ready_time", "gauge")
	for i, p := range tl.Pods {
		ready := math.Floor(tl.unix(p.Ready))
		e.series("kube_pod_status_ready_time", podLabels(i), tl.ready(p), func(int) float64 { return ready })
	}

	e.family("http_request_duration_seconds", "histogram")
	for i, p := range tl.Pods {
		if !p.ReadyEver() {
			continue
		}
		base := lbl("namespace", n.Namespace, "pod", podName(rs, seed, i), "container", n.Deployment, "endpoint", "http",
			"job", n.Namespace+"/"+n.Deployment, "instance", fmt.Sprintf("10.244.0.%d:8000", 10+i%240))
		e.histogram("http_request_duration_seconds", base, p)
	}

	e.family("montage_scaler_decision_replicas", "gauge")
	e.eachScaler(n, func(so func(...string) string) {
		e.series("montage_scaler_decision_replicas", so(), func(k int) bool { return tl.Decision[k] != nil },
			func(k int) float64 { return *tl.Decision[k] })
	})
	e.family("montage_scaler_component_replicas", "gauge")
	e.eachScaler(n, func(so func(...string) string) {
		for _, c := range keysOf(tl.Asks) {
			e.series("montage_scaler_component_replicas", so("component", c), func(k int) bool { _, ok := tl.Asks[k][c]; return ok },
				func(k int) float64 { return tl.Asks[k][c] })
		}
	})
	if modes := keysOf(tl.Forecast); len(modes) > 0 {
		e.family("montage_scaler_forecast_replicas", "gauge")
		e.eachScaler(n, func(so func(...string) string) {
			for _, m := range modes {
				e.series("montage_scaler_forecast_replicas", so("mode", m), func(k int) bool { _, ok := tl.Forecast[k][m]; return ok },
					func(k int) float64 { return tl.Forecast[k][m] })
			}
		})
	}
	e.family("montage_scaler_celery_queued_tasks", "gauge")
	e.eachScaler(n, func(so func(...string) string) {
		e.series("montage_scaler_celery_queued_tasks", so(), all, func(k int) float64 { return float64(tl.Queued[k]) })
	})
	e.family("montage_scaler_celery_in_flight_tasks", "gauge")
	e.eachScaler(n, func(so func(...string) string) {
		e.series("montage_scaler_celery_in_flight_tasks", so(), all, func(k int) float64 { return float64(tl.InFlight[k]) })
	})
	e.family("montage_scaler_celery_oldest_wait_seconds", "gauge")
	e.eachScaler(n, func(so func(...string) string) {
		e.series("montage_scaler_celery_oldest_wait_seconds", so("queue", "celery"), all, func(k int) float64 { return tl.OldestWait[k] })
	})
	e.family("montage_scaler_celery_tasks_processed", "counter")
	e.eachScaler(n, func(so func(...string) string) {
		e.series("montage_scaler_celery_tasks_processed_total", so(), all, func(k int) float64 { return float64(tl.Processed[k]) })
	})
	fmt.Fprint(bw, "# EOF\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("openmetrics: %w", err)
	}
	return nil
}

func one(int) float64 { return 1 }

type omWriter struct {
	w  *bufio.Writer
	tl *Timeline
}

func (e *omWriter) family(name, typ string) { fmt.Fprintf(e.w, "# TYPE %s %s\n", name, typ) }

// series writes name{labels} at every sample where present, in time order.
func (e *omWriter) series(name, labels string, present func(k int) bool, value func(k int) float64) {
	for k, at := range e.tl.Times {
		if present(k) {
			fmt.Fprintf(e.w, "%s{%s} %s %d\n", name, labels, omNum(value(k)), at.Unix())
		}
	}
}

// histogram writes a pod's buckets, count and sum at each sample from its
// Ready to its last scrape, each point's lines together.
func (e *omWriter) histogram(name, labels string, p PodTimeline) {
	present := e.tl.served(p)
	for k, at := range e.tl.Times {
		if !present(k) || k < p.First {
			continue
		}
		j := k - p.First
		ts := at.Unix()
		for b, le := range LatencyBuckets {
			fmt.Fprintf(e.w, "%s_bucket{%s,le=\"%s\"} %s %d\n", name, labels, strconv.FormatFloat(le, 'g', -1, 64), omNum(p.Buckets[j][b]), ts)
		}
		fmt.Fprintf(e.w, "%s_bucket{%s,le=\"+Inf\"} %s %d\n", name, labels, omNum(p.Count[j]), ts)
		fmt.Fprintf(e.w, "%s_count{%s} %s %d\n", name, labels, omNum(p.Count[j]), ts)
		fmt.Fprintf(e.w, "%s_sum{%s} %s %d\n", name, labels, omNum(p.Sum[j]), ts)
	}
}

func (e *omWriter) eachScaler(n Names, f func(so func(...string) string)) {
	for _, pod := range scalerReplicas {
		f(func(extra ...string) string {
			return lbl(append([]string{"namespace", n.Namespace, "scaledobject", n.ScaledObject}, extra...)...) + "," +
				lbl("job", scalerJob, "pod", pod)
		})
	}
}

func omNum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// lbl formats name, value pairs as OpenMetrics labels.
func lbl(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(kv[i+1]))
		b.WriteByte('"')
	}
	return b.String()
}

// replicaSetName is the Deployment's ReplicaSet: name-hash, as the
// Deployment controller names it.
func replicaSetName(deployment string) string {
	h := fnv.New32a()
	h.Write([]byte(deployment))
	return deployment + "-" + safeEncode(uint64(h.Sum32()), 10)
}

// podName is the ReplicaSet's i-th pod of the timeline starting at seed
// (Unix seconds): rs-xxxxx, distinct from another run's.
func podName(rs string, seed int64, i int) string {
	return rs + "-" + safeEncode(uint64(seed)*31+uint64(i)*2654435761+12345, 5)
}

func podUID(seed int64, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", uint32(seed), i)
}

// safeEncode spells v in the alphabet Kubernetes uses for generated names
// (no vowels, no confusable characters), n characters long.
func safeEncode(v uint64, n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[v%uint64(len(alphabet))]
		v /= uint64(len(alphabet))
	}
	return string(b)
}

// sec is sample k's time, in seconds from the trace's start.
func (tl *Timeline) sec(k int) float64 { return tl.Times[k].Sub(tl.Start).Seconds() }

func (tl *Timeline) unix(s float64) float64 {
	return float64(tl.Start.Unix()) + s
}

// exists: the pod object is there (kube-state-metrics lists it), from its
// creation until it is gone.
func (tl *Timeline) exists(p PodTimeline) func(k int) bool {
	return func(k int) bool { s := tl.sec(k); return p.Created <= s && s < p.Gone }
}

// ready: its Ready condition is true, from Ready until deleted.
func (tl *Timeline) ready(p PodTimeline) func(k int) bool {
	return func(k int) bool { s := tl.sec(k); return p.ReadyEver() && p.Ready <= s && s < p.Deleted && s < p.Gone }
}

// served: its /metrics answers, from Ready until it is gone.
func (tl *Timeline) served(p PodTimeline) func(k int) bool {
	return func(k int) bool { s := tl.sec(k); return p.ReadyEver() && p.Ready <= s && s < p.Gone }
}

// pods counts the Deployment's pods not being deleted at sample k (status.
// replicas), or only the Ready ones (available).
func (tl *Timeline) pods(k int, readyOnly bool) int {
	s, n := tl.sec(k), 0
	for _, p := range tl.Pods {
		if p.Created <= s && s < p.Deleted && (!readyOnly || p.Ready <= s) {
			n++
		}
	}
	return n
}

// keysOf is every key of the maps, sorted: the components that had an
// opinion, or the forecast's modes, over the timeline.
func keysOf(ms []map[string]float64) []string {
	var out []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}
