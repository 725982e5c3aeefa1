// Package decide turns the components' latest evidence into one decision:
// desired replicas, active or not, and the reasons. It does no I/O; "now" is a
// parameter.
package decide

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Ceiling is the most replicas a decision ever asks for, and the largest
// replica count the scaler accepts anywhere (minReplicas, maxReplicas,
// calendarReplicas, a calendar event's hint, the current replicas it
// reads): without maxReplicas it is the decision's upper clamp. KEDA turns
// a metric it cannot hold into a wrong one (+Inf becomes 0, a milli-value
// past int64 goes negative), and either scales a Deployment down at its
// busiest; 10,000 pods is far beyond any Montage deployment and far inside
// what KEDA and the HPA hold exactly.
const Ceiling = 10000

// CheckReplicas says whether n is a replica count the scaler accepts: a
// number from 0 to Ceiling (NaN and the infinities are not).
func CheckReplicas(n float64) error {
	if !(n >= 0 && n <= Ceiling) {
		return fmt.Errorf("%s is not a replica count from 0 to %d", FormatReplicas(n), Ceiling)
	}
	return nil
}

// Opinion is what one component asks for, computed from one good reading.
type Opinion struct {
	// Desired replicas; nil means no opinion.
	Desired *float64
	Active  bool
	// Warnings explain a reading that is valid but surprising.
	Warnings []string
	// Detail is the component's evidence, shown by Explain.
	Detail any
	// Advisory opinions are shown but take no part in max() nor in active
	// (the forecast in dry-run).
	Advisory bool
}

// Reading is a component's latest evidence as its source holds it.
type Reading struct {
	Name string
	// Opinion from the last good reading; meaningless when GoodAt is zero.
	Opinion Opinion
	// GoodAt is when the last good reading was taken; zero: none yet.
	GoodAt time.Time
	// Err is the latest refresh error, nil if the latest refresh worked.
	Err error
	// NoExpiry marks evidence that stays valid however old (a calendar's
	// events are future facts).
	NoExpiry bool
	// Optional marks a source whose absence is no reason to withhold the
	// decision: until its first good reading it has no opinion, with a
	// warning, and the other components decide (a calendar feed that fails
	// when the scaler starts must not switch off queue and latency scaling).
	Optional bool
}

// Policy is the ScaledObject's clamp and staleness limit.
type Policy struct {
	Min float64
	// Max is the upper clamp; nil means none.
	Max        *float64
	StaleAfter time.Duration
}

// Bounds is the clamp as Explain shows it.
type Bounds struct {
	Min float64  `json:"min"`
	Max *float64 `json:"max"`
}

// ComponentResult is one component's part of a decision.
type ComponentResult struct {
	Name       string    `json:"name"`
	Desired    *float64  `json:"desiredReplicas"`
	Active     bool      `json:"active"`
	Error      string    `json:"error"`
	Warnings   []string  `json:"warnings"`
	ObservedAt time.Time `json:"observedAt"`
	Detail     any       `json:"detail"`
	// Held is true when the opinion comes from a last good reading kept
	// through a failing refresh.
	Held bool `json:"held"`
	// Stale is true when the source failed past the staleness limit.
	Stale bool `json:"stale"`
}

// Decision is the scaler's answer for one ScaledObject at one instant.
type Decision struct {
	// Desired is the clamped decision; nil when no decision could be made.
	Desired    *float64          `json:"desiredReplicas"`
	Active     bool              `json:"active"`
	Bounds     Bounds            `json:"bounds"`
	Components []ComponentResult `json:"components"`
	Warnings   []string          `json:"warnings"`
	// Error says why there is no decision; empty when there is one.
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
	// PodCosts is the pod-cost writer's latest plan for the target's pods
	// (serve --pod-deletion-cost, check --pod-costs); nil without one. It
	// is shown, and takes no part in the decision.
	PodCosts any `json:"podCosts,omitempty"`
}

// NoGoodReadingWarning is the warning of an Optional component that has had
// no good reading yet.
const NoGoodReadingWarning = "no good reading yet: no opinion until the first one; the other components decide"

// ErrNoDecision wraps the reason a Decision has none.
var ErrNoDecision = errors.New("no decision")

// Err returns nil when a decision was made, else an error wrapping
// ErrNoDecision that names the failing sources.
func (d Decision) Err() error {
	if d.Desired != nil {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNoDecision, d.Error)
}

// Decide folds readings into a decision, listing the components in the
// readings' order (the table's: see package components). A source with no good reading yet, or
// whose last good reading is older than StaleAfter while it fails, makes the
// decision unavailable: a made-up 0 would scale the workload down at its
// busiest. An Optional source without a good reading yet is the exception:
// it has no opinion and says so in the warnings. An ask that is not a
// finite number ≥ 0 is an error naming its component, never a number. The
// result is clamp(max(opinions), Min, Max), or Min with no opinion; without
// Max the upper clamp is Ceiling, so a decision is always a number from 0 to
// Ceiling.
func Decide(now time.Time, p Policy, readings []Reading) Decision {
	d := Decision{
		Bounds:     Bounds{Min: p.Min, Max: p.Max},
		Components: []ComponentResult{},
		Warnings:   []string{},
		At:         now,
	}

	var failed []string
	best := math.Inf(-1)
	for _, r := range readings {
		c, failure, warning := judge(now, p, r)
		if failure != "" {
			failed = append(failed, failure)
		}
		if warning != "" {
			d.Warnings = append(d.Warnings, warning)
		}
		if c.counts {
			if c.Desired != nil && *c.Desired > best {
				best = *c.Desired
			}
			d.Active = d.Active || c.Active
		}
		d.Components = append(d.Components, c.ComponentResult)
	}
	if len(failed) > 0 {
		d.Active = false
		d.Error = strings.Join(failed, "; ")
		return d
	}
	v := p.Min
	if best > v {
		v = best
	}
	switch {
	case p.Max != nil && v > *p.Max:
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s replicas asked for, clamped to maxReplicas %s", FormatReplicas(v), FormatReplicas(*p.Max)))
		v = *p.Max
	case v > Ceiling:
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s replicas asked for, clamped to the ceiling %d (no maxReplicas)", FormatReplicas(v), Ceiling))
		v = Ceiling
	}
	if best == math.Inf(-1) {
		d.Warnings = append(d.Warnings, fmt.Sprintf("no component has an opinion: minReplicas %s", FormatReplicas(p.Min)))
	}
	v = math.Round(v*1000) / 1000 // KEDA keeps milli precision
	// The decision once more before it leaves: the opinions were checked
	// above, but the policy is anyone's struct (spec bounds the one
	// metadata makes).
	if err := CheckReplicas(v); err != nil {
		d.Active = false
		d.Error = fmt.Sprintf("decision %v (minReplicas %s, maxReplicas %s)", err, FormatReplicas(p.Min), formatMax(p.Max))
		return d
	}
	d.Desired = &v
	return d
}

// finite reports whether v is an ask: a finite number ≥ 0.
func finite(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func formatMax(m *float64) string {
	if m == nil {
		return "none"
	}
	return FormatReplicas(*m)
}

// Ptr returns a pointer to v, for optional replicas.
func Ptr(v float64) *float64 { return &v }

// CeleryBacklog is the celery component's evidence.
type CeleryBacklog struct {
	Queued   int64
	InFlight int64
	// OldestWait is how long the oldest waiting task has waited, by an age
	// every scaler replica reads alike (a publish stamp, or a first
	// sighting kept in the broker); 0 when none waits or none is known.
	OldestWait time.Duration
	// Workers is how many workers are live (their heartbeats); 0 when
	// unknown.
	Workers int
}

// CeleryOpinion asks for (queued + inFlight) / tasksPerReplica; active when any
// task is queued or in flight.
func CeleryOpinion(b CeleryBacklog, tasksPerReplica float64, detail any) Opinion {
	work := float64(b.Queued) + float64(b.InFlight) // no int64 overflow
	return Opinion{
		Desired: Ptr(work / tasksPerReplica),
		Active:  work > 0,
		Detail:  detail,
	}
}

// judged is one component's part of a decision, and whether its opinion
// takes part in max() and in active.
type judged struct {
	ComponentResult
	counts bool
}

// judge is one reading's part of a decision at now: its result, why it
// withholds the decision ("" when it does not), and the decision's warning
// about it ("" for none).
func judge(now time.Time, p Policy, r Reading) (c judged, failure, warning string) {
	c.ComponentResult = ComponentResult{Name: r.Name, Warnings: []string{}, ObservedAt: r.GoodAt}
	if r.Err != nil {
		c.Error = r.Err.Error()
	}
	switch {
	case r.GoodAt.IsZero() && r.Optional:
		why := "its first read is under way"
		if c.Error != "" {
			why = c.Error
		}
		c.Warnings = append(c.Warnings, NoGoodReadingWarning)
		return c, "", fmt.Sprintf("%s has no good reading yet (%s): decided without it", r.Name, why)
	case r.GoodAt.IsZero():
		c.Stale = true
		if c.Error == "" {
			c.Error = "no reading yet"
		}
		return c, r.Name + ": " + strings.TrimPrefix(c.Error, r.Name+": "), ""
	case r.Err != nil && !r.NoExpiry && now.Sub(r.GoodAt) > p.StaleAfter:
		c.Stale = true
		return c, fmt.Sprintf("%s: last good reading %s old (staleAfter %s): %s",
			r.Name, now.Sub(r.GoodAt).Round(time.Second), p.StaleAfter, strings.TrimPrefix(c.Error, r.Name+": ")), ""
	}
	o := r.Opinion
	c.Held = r.Err != nil
	c.Detail = o.Detail
	c.Warnings = append(c.Warnings, o.Warnings...)
	if o.Desired != nil && !finite(*o.Desired) {
		// An ask that is not a number of replicas is an error naming its
		// component, never a number: KEDA reads +Inf as 0. (A finite ask
		// above the ceiling is clamped by Decide.)
		msg := fmt.Sprintf("asks for %s replicas: not a finite number ≥ 0", FormatReplicas(*o.Desired))
		c.Error = joinErr(c.Error, msg)
		if o.Advisory {
			c.Warnings = append(c.Warnings, "advisory (dry-run): "+msg)
			return c, "", ""
		}
		return c, r.Name + ": " + msg, ""
	}
	c.Desired = o.Desired
	c.Active = o.Active
	if c.Held {
		c.Warnings = append(c.Warnings, fmt.Sprintf("refresh failing; using the reading of %s", r.GoodAt.UTC().Format(time.RFC3339)))
	}
	if o.Advisory {
		c.Warnings = append(c.Warnings, "advisory (dry-run): shown, not part of the decision")
		return c, "", ""
	}
	c.counts = true
	return c, "", ""
}
