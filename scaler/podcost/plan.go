// Package podcost is the opt-in pod-cost writer of `serve
// --pod-deletion-cost`: while a ScaledObject's decision is below its
// target's current replicas (the HPA will scale down once its stabilization
// window has passed), it keeps each pod's
// controller.kubernetes.io/pod-deletion-cost annotation current, so that
// the ReplicaSet controller removes idle pods first and a pod that renders
// is the last to go; it clears the costs it wrote once the decision is no
// longer below.
//
// Plan is the pure part: which cost each pod should have and why, from the
// Celery workers' heartbeats (a worker's hostname is celery@<pod name>).
// Writer is the I/O: the decision from the registry, the pods from the
// Kubernetes API, bounded patches.
package podcost

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/montage/montage-scaler/scaler/celery"
)

// Annotation is the cost the ReplicaSet controller reads when it picks the
// pods a scale-down removes: lower first (a pod without it costs 0).
const Annotation = "controller.kubernetes.io/pod-deletion-cost"

// Marker is set beside Annotation on the pods whose cost montage-scaler
// wrote, so that it clears only its own (a restarted scaler, or its other
// replica, included).
const Marker = "montage-scaler.io/pod-deletion-cost"

// Pod is what the writer read of one pod of the scale target.
type Pod struct {
	Name string
	// Cost is the pod's Annotation, "" without one.
	Cost string
	// Ours says Marker is set: montage-scaler wrote Cost.
	Ours bool
	// Deleting: the pod has a deletionTimestamp (it is no candidate).
	Deleting bool
}

// Want is the cost one pod should have and why.
type Want struct {
	Pod string `json:"pod"`
	// Cost is the value to write; nil: no cost of ours (cleared if Ours).
	Cost *int64 `json:"cost"`
	// Active is the tasks the pod's worker runs, by its latest heartbeat;
	// nil without one.
	Active *int64 `json:"active"`
	Why    string `json:"why"`
	// Write says the pod's annotations differ from what is wanted.
	Write bool `json:"-"`
}

// Plan is the costs wanted for one scale target's pods.
type Plan struct {
	// Below says the decision is below the current replicas: costs are
	// kept; otherwise the costs of ours are cleared.
	Below   bool    `json:"below"`
	Desired float64 `json:"desiredReplicas"`
	Current int32   `json:"currentReplicas"`
	Pods    []Want  `json:"pods"`
	// Warning says why nothing is written (workers that match no pod).
	Warning string `json:"warning,omitempty"`
}

// Cost is a busy pod's cost: its running tasks. The ReplicaSet removes the
// cheapest first, so idle pods (no cost: 0) go before any pod that runs a
// task, and among busy pods the one with fewer tasks goes first: it holds
// fewer renders in its warm shutdown. Heartbeats carry the count of running
// tasks and nothing of their progress, so the count is what there is.
func Cost(active int64) int64 { return active }

// Build is the plan for pods at the decision desired with current replicas,
// from the live workers' heartbeats. Workers map to pods by hostname: the
// part after '@' of celery@<name> is the pod's name (Celery's default
// hostname is celery@<the machine's hostname>, which in a pod is the pod's
// name). When workers are live but none maps to a pod, nothing is written
// and Warning says so.
func Build(desired float64, current int32, workers []celery.WorkerLoad, pods []Pod) Plan {
	// The HPA asks for ceil(desired) replicas (AverageValue 1).
	p := Plan{Below: math.Ceil(desired) < float64(current), Desired: desired, Current: current}
	byPod := make(map[string]int64, len(workers))
	for _, w := range workers {
		byPod[podOf(w.Hostname)] = w.Active
	}
	matched := 0
	for _, pod := range pods {
		if _, ok := byPod[pod.Name]; ok {
			matched++
		}
	}
	if p.Below && len(workers) > 0 && matched == 0 && len(pods) > 0 {
		p.Warning = fmt.Sprintf("no Celery worker's hostname names a pod of the target (workers %s; pods %s): "+
			"run the workers with hostname celery@<pod name> (Celery's default, celery@%%h, in a pod whose hostname is its name); no costs written",
			sample(workers, func(w celery.WorkerLoad) string { return w.Hostname }), sample(pods, func(p Pod) string { return p.Name }))
	}
	for _, pod := range pods {
		w := Want{Pod: pod.Name}
		active, ok := byPod[pod.Name]
		if ok {
			w.Active = &active
		}
		switch {
		case !p.Below:
			w.Why = fmt.Sprintf("the decision %g is not below the current %d replicas: no cost", desired, current)
		case p.Warning != "":
			w.Why = "no worker matches a pod: nothing written"
		case pod.Deleting:
			w.Why = "being deleted: left as it is"
		case !ok:
			w.Why = fmt.Sprintf("no heartbeat from a worker celery@%s: no cost (as an idle pod)", pod.Name)
		case active == 0:
			w.Why = "idle: no cost, among the first to go"
		default:
			c := Cost(active)
			w.Cost = &c
			w.Why = fmt.Sprintf("busy: %d running tasks, cost %d", active, c)
		}
		w.Write = p.Warning == "" && !pod.Deleting && differs(pod, w.Cost)
		p.Pods = append(p.Pods, w)
	}
	return p
}

// differs says whether pod's annotations must change to hold cost (nil: no
// cost of ours). A cost someone else set is ours to replace only when we
// want one; without one it is left alone.
func differs(pod Pod, cost *int64) bool {
	if cost == nil {
		return pod.Ours
	}
	return !pod.Ours || pod.Cost != strconv.FormatInt(*cost, 10)
}

// podOf is the pod a worker hostname names: the part after the first '@'
// (celery@montage-7c9f-abcde), or the whole hostname without one.
func podOf(hostname string) string {
	if _, host, ok := strings.Cut(hostname, "@"); ok {
		return host
	}
	return hostname
}

// sample lists up to three names, and how many more.
func sample[T any](xs []T, name func(T) string) string {
	var names []string
	for _, x := range xs {
		names = append(names, name(x))
	}
	slices.Sort(names)
	if len(names) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}
