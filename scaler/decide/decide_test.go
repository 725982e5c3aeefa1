package decide

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	fresh := now.Add(-time.Second)
	old := now.Add(-3 * time.Minute)
	opinion := func(v float64, active bool) Opinion { return Opinion{Desired: Ptr(v), Active: active} }
	policy := Policy{Min: 1, Max: Ptr(8), StaleAfter: 2 * time.Minute}
	boom := errors.New("dial tcp 127.0.0.1:6379: connection refused")

	tests := []struct {
		name       string
		policy     Policy
		readings   []Reading
		want       *float64
		wantActive bool
		wantErr    string
		wantWarn   string
	}{
		{
			name:       "the backlog's opinion is the decision inside the bounds",
			policy:     policy,
			readings:   []Reading{{Name: Celery, Opinion: opinion(2.4, true), GoodAt: fresh}},
			want:       Ptr(2.4),
			wantActive: true,
		},
		{
			name:     "an idle queue falls back to minReplicas and is not active",
			policy:   policy,
			readings: []Reading{{Name: Celery, Opinion: opinion(0, false), GoodAt: fresh}},
			want:     Ptr(1),
		},
		{
			name:       "more than maxReplicas asked is clamped and says so",
			policy:     policy,
			readings:   []Reading{{Name: Celery, Opinion: opinion(12, true), GoodAt: fresh}},
			want:       Ptr(8),
			wantActive: true,
			wantWarn:   "clamped to maxReplicas 8",
		},
		{
			name:       "no maxReplicas means no upper clamp",
			policy:     Policy{StaleAfter: time.Minute},
			readings:   []Reading{{Name: Celery, Opinion: opinion(12, true), GoodAt: fresh}},
			want:       Ptr(12),
			wantActive: true,
		},
		{
			name:   "the largest opinion wins",
			policy: policy,
			readings: []Reading{
				{Name: Calendar, Opinion: opinion(4, true), GoodAt: fresh, NoExpiry: true},
				{Name: Celery, Opinion: opinion(2, true), GoodAt: fresh},
			},
			want:       Ptr(4),
			wantActive: true,
		},
		{
			name:     "a component with no opinion leaves minReplicas",
			policy:   policy,
			readings: []Reading{{Name: Latency, Opinion: Opinion{}, GoodAt: fresh}},
			want:     Ptr(1),
			wantWarn: "no component has an opinion",
		},
		{
			name:       "a failing source's last good reading is held until staleAfter",
			policy:     policy,
			readings:   []Reading{{Name: Celery, Opinion: opinion(3, true), GoodAt: now.Add(-90 * time.Second), Err: boom}},
			want:       Ptr(3),
			wantActive: true,
		},
		{
			name:     "past staleAfter a failing source means no decision, not a 0",
			policy:   policy,
			readings: []Reading{{Name: Celery, Opinion: opinion(3, true), GoodAt: old, Err: boom}},
			wantErr:  "celery: last good reading 3m0s old (staleAfter 2m0s): dial tcp 127.0.0.1:6379: connection refused",
		},
		{
			name:     "a source never read yet means no decision",
			policy:   policy,
			readings: []Reading{{Name: Celery, Err: boom}},
			wantErr:  "celery: dial tcp 127.0.0.1:6379: connection refused",
		},
		{
			name:     "a source not polled yet means no decision",
			policy:   policy,
			readings: []Reading{{Name: Celery}},
			wantErr:  "celery: no reading yet",
		},
		{
			name:       "a calendar's last good copy has no age limit",
			policy:     policy,
			readings:   []Reading{{Name: Calendar, Opinion: opinion(4, true), GoodAt: now.Add(-48 * time.Hour), Err: boom, NoExpiry: true}},
			want:       Ptr(4),
			wantActive: true,
		},
		{
			name:     "a component's error that names it is not prefixed twice",
			policy:   policy,
			readings: []Reading{{Name: Celery, Err: errors.New("celery: poll redis://h:6379/0: connection refused")}},
			wantErr:  "celery: poll redis://h:6379/0: connection refused",
		},
		{
			name:     "nor when its last good reading is stale",
			policy:   policy,
			readings: []Reading{{Name: Latency, Opinion: opinion(2, true), GoodAt: old, Err: errors.New("latency: query: 503")}},
			wantErr:  "latency: last good reading 3m0s old (staleAfter 2m0s): query: 503",
		},
		{
			name:   "a calendar that never had a good copy is no opinion, not a reason to withhold the decision",
			policy: policy,
			readings: []Reading{
				{Name: Calendar, Err: errors.New("calendar: fetch https://cal/xxxxx/basic.ics: HTTP status 404"), NoExpiry: true, Optional: true},
				{Name: Celery, Opinion: opinion(3, true), GoodAt: fresh},
			},
			want:       Ptr(3),
			wantActive: true,
			wantWarn:   "calendar has no good reading yet (calendar: fetch https://cal/xxxxx/basic.ics: HTTP status 404): decided without it",
		},
		{
			name:     "a calendar alone whose first fetch is under way leaves minReplicas",
			policy:   policy,
			readings: []Reading{{Name: Calendar, NoExpiry: true, Optional: true}},
			want:     Ptr(1),
			wantWarn: "calendar has no good reading yet (its first read is under way): decided without it",
		},
		{
			name:   "an optional source does not excuse another that never read",
			policy: policy,
			readings: []Reading{
				{Name: Calendar, Optional: true},
				{Name: Celery, Err: boom},
			},
			wantErr: "celery: dial tcp 127.0.0.1:6379: connection refused",
		},
		{
			name:       "without maxReplicas an ask above the ceiling is clamped to it and says so",
			policy:     Policy{StaleAfter: time.Minute},
			readings:   []Reading{{Name: Latency, Opinion: opinion(1e308, true), GoodAt: fresh}},
			want:       Ptr(Ceiling),
			wantActive: true,
			wantWarn:   "1e+308 replicas asked for, clamped to the ceiling 10000 (no maxReplicas)",
		},
		{
			name:       "an ask of 1.25e17, which KEDA's milli-value would overflow, is clamped to the ceiling too",
			policy:     Policy{StaleAfter: time.Minute},
			readings:   []Reading{{Name: Celery, Opinion: opinion(1.25e17, true), GoodAt: fresh}},
			want:       Ptr(Ceiling),
			wantActive: true,
			wantWarn:   "clamped to the ceiling 10000",
		},
		{
			name:     "an infinite ask is an error naming its component, never a number",
			policy:   Policy{StaleAfter: time.Minute},
			readings: []Reading{{Name: Latency, Opinion: opinion(math.Inf(1), true), GoodAt: fresh}},
			wantErr:  "latency: asks for +Inf replicas: not a finite number ≥ 0",
		},
		{
			name:   "a NaN ask is an error even beside a good one",
			policy: policy,
			readings: []Reading{
				{Name: Celery, Opinion: opinion(2, true), GoodAt: fresh},
				{Name: Forecast, Opinion: opinion(math.NaN(), true), GoodAt: fresh, NoExpiry: true},
			},
			wantErr: "forecast: asks for NaN replicas: not a finite number ≥ 0",
		},
		{
			name:     "a negative ask is an error, not minReplicas",
			policy:   policy,
			readings: []Reading{{Name: Celery, Opinion: opinion(-3, true), GoodAt: fresh}},
			wantErr:  "celery: asks for -3 replicas: not a finite number ≥ 0",
		},
		{
			name:   "an advisory ask that is not a number decides nothing and withholds nothing",
			policy: policy,
			readings: []Reading{
				{Name: Celery, Opinion: opinion(2, true), GoodAt: fresh},
				{Name: Forecast, Opinion: Opinion{Desired: Ptr(math.Inf(1)), Active: true, Advisory: true}, GoodAt: fresh, NoExpiry: true},
			},
			want:       Ptr(2),
			wantActive: true,
		},
		{
			name:     "a policy whose minReplicas is NaN gives no decision, never that number",
			policy:   Policy{Min: math.NaN(), StaleAfter: time.Minute},
			readings: []Reading{{Name: Celery, Opinion: opinion(1, true), GoodAt: fresh}},
			wantErr:  "decision NaN is not a replica count from 0 to 10000 (minReplicas NaN, maxReplicas none)",
		},
		{
			name:     "a policy whose maxReplicas is below 0 gives no decision",
			policy:   Policy{Max: Ptr(-1), StaleAfter: time.Minute},
			readings: []Reading{{Name: Celery, Opinion: opinion(1, true), GoodAt: fresh}},
			wantErr:  "decision -1 is not a replica count from 0 to 10000 (minReplicas 0, maxReplicas -1)",
		},
		{
			name:       "a minReplicas beyond the ceiling is clamped to it",
			policy:     Policy{Min: 20000, StaleAfter: time.Minute},
			readings:   []Reading{{Name: Celery, Opinion: opinion(1, true), GoodAt: fresh}},
			want:       Ptr(Ceiling),
			wantActive: true,
			wantWarn:   "20000 replicas asked for, clamped to the ceiling 10000 (no maxReplicas)",
		},
		{
			name:       "KEDA's milli precision",
			policy:     Policy{StaleAfter: time.Minute},
			readings:   []Reading{{Name: Celery, Opinion: opinion(7.0/3.0, true), GoodAt: fresh}},
			want:       Ptr(2.333),
			wantActive: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(now, tc.policy, tc.readings)
			if tc.wantErr != "" {
				if d.Desired != nil || d.Active {
					t.Fatalf("want no decision, got desired=%s active=%t", fmtPtr(d.Desired), d.Active)
				}
				if d.Error != tc.wantErr {
					t.Fatalf("error:\n got %q\nwant %q", d.Error, tc.wantErr)
				}
				if !errors.Is(d.Err(), ErrNoDecision) {
					t.Fatalf("Err() = %v, want ErrNoDecision", d.Err())
				}
				return
			}
			if d.Desired == nil {
				t.Fatalf("no decision: %s", d.Error)
			}
			if *d.Desired != *tc.want || d.Active != tc.wantActive {
				t.Fatalf("got %v active=%t, want %v active=%t", *d.Desired, d.Active, *tc.want, tc.wantActive)
			}
			if tc.wantWarn != "" && !strings.Contains(strings.Join(d.Warnings, "|"), tc.wantWarn) {
				t.Fatalf("warnings %q lack %q", d.Warnings, tc.wantWarn)
			}
		})
	}
}

func TestEveryDecisionIsAFiniteNumberInRangeAndWritesAsJSON(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	asks := []float64{math.Inf(1), math.Inf(-1), math.NaN(), -1, 0, 2.4, Ceiling, Ceiling + 1, 5e15, 1.25e17, 1e300, 1e308, math.MaxFloat64}
	policies := []Policy{{StaleAfter: time.Minute}, {Min: 1, Max: Ptr(8), StaleAfter: time.Minute}, {Min: Ceiling, StaleAfter: time.Minute}}
	for _, p := range policies {
		for _, name := range order {
			for _, ask := range asks {
				for _, advisory := range []bool{false, true} {
					d := Decide(now, p, []Reading{
						{Name: Celery, Opinion: Opinion{Desired: Ptr(1), Active: true}, GoodAt: now},
						{Name: name, Opinion: Opinion{Desired: Ptr(ask), Active: true, Advisory: advisory}, GoodAt: now},
					})
					if _, err := json.Marshal(d); err != nil {
						t.Errorf("%s asks %g (advisory %t) under %+v: JSON: %v", name, ask, advisory, p, err)
					}
					if d.Desired != nil && CheckReplicas(*d.Desired) != nil {
						t.Errorf("%s asks %g (advisory %t) under %+v: decision %g", name, ask, advisory, p, *d.Desired)
					}
					if d.Desired == nil && !strings.HasPrefix(d.Error, name+": asks for ") {
						t.Errorf("%s asks %g (advisory %t) under %+v: no decision, error %q does not name it", name, ask, advisory, p, d.Error)
					}
					for _, c := range d.Components {
						if c.Desired != nil && !finite(*c.Desired) {
							t.Errorf("%s asks %g: component %s shows %g", name, ask, c.Name, *c.Desired)
						}
					}
				}
			}
		}
	}
}

func TestDecideMarksHeldReadings(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	d := Decide(now, Policy{StaleAfter: time.Minute}, []Reading{{
		Name: Celery, Opinion: Opinion{Desired: Ptr(2), Active: true}, GoodAt: now.Add(-30 * time.Second), Err: errors.New("i/o timeout"),
	}})
	c := d.Components[0]
	if !c.Held || c.Error != "i/o timeout" || c.Stale {
		t.Fatalf("component = %+v, want held with its error", c)
	}
	if !c.ObservedAt.Equal(now.Add(-30 * time.Second)) {
		t.Fatalf("observedAt = %v", c.ObservedAt)
	}
}

func TestAnOptionalComponentWithoutAReadingSaysSo(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	d := Decide(now, Policy{StaleAfter: time.Minute}, []Reading{{Name: Calendar, Err: errors.New("HTTP status 404"), Optional: true}})
	c := d.Components[0]
	if c.Desired != nil || c.Stale || c.Held || c.Error != "HTTP status 404" || len(c.Warnings) != 1 || c.Warnings[0] != NoGoodReadingWarning {
		t.Fatalf("component = %+v", c)
	}
}

func TestCeleryOpinion(t *testing.T) {
	o := CeleryOpinion(CeleryBacklog{Queued: 9, InFlight: 3}, 5, nil)
	if *o.Desired != 2.4 || !o.Active {
		t.Fatalf("got %v active=%t, want 2.4 active", *o.Desired, o.Active)
	}
	o = CeleryOpinion(CeleryBacklog{}, 5, nil)
	if *o.Desired != 0 || o.Active {
		t.Fatalf("idle: got %v active=%t", *o.Desired, o.Active)
	}
}

// fmtPtr prints optional replicas, nil included.
func fmtPtr(p *float64) string {
	if p == nil {
		return "<nil>"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func TestFormatReplicasRoundsHalvesAwayFromZeroToMilli(t *testing.T) {
	for v, want := range map[float64]string{6.0625: "6.063", 4: "4", 2.4: "2.4", 7.0 / 3.0: "2.333", 0.0005: "0.001", 0.0004: "0",
		1e308: "1e+308", 1.25e17: "1.25e+17", -5e15: "-5e+15", math.Inf(1): "+Inf", math.NaN(): "NaN"} {
		if got := FormatReplicas(v); got != want {
			t.Errorf("FormatReplicas(%v) = %q, want %q", v, got, want)
		}
	}
}

// The components' names, as the tests' readings name them.
const (
	Celery   = "celery"
	Latency  = "latency"
	Calendar = "calendar"
	Forecast = "forecast"
)

var order = []string{Celery, Latency, Calendar, Forecast}
