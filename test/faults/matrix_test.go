//go:build faults

package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc/codes"

	"github.com/montage/montage-scaler/scaler/calendar/feed"
)

// The matrix's settings: short, so that every cell fits in about two
// minutes, and all cells run side by side.
const (
	staleAfter           = 10 * time.Second       // serve --stale-after
	pollInterval         = time.Second            // serve --poll-interval: the broker
	pollMaxBackoff       = 2 * time.Second        // serve --poll-max-backoff: a failing broker is asked at most this far apart
	redisTimeout         = 500 * time.Millisecond // serve --redis-timeout
	latencyInterval      = time.Second            // serve --latency-interval
	latencyTimeout       = time.Second            // metadata latencyTimeout
	calendarFetchTimeout = 3 * time.Second        // serve --calendar-fetch-timeout
	// calendarRetry is when a feed is read again, after a good read (the
	// feed asks for PT1M) and after a failed one: the least the scaler
	// allows.
	calendarRetry = feed.MinRefresh

	flapPeriod = 3 * time.Second  // flapping: down, then up, this long each
	flapFor    = 30 * time.Second // for this long, ending up

	healthBound = 100 * time.Millisecond // gRPC health must answer within this during a fault
	sampleEvery = 200 * time.Millisecond // GetMetrics + IsActive, as KEDA would call them
	probeEvery  = 500 * time.Millisecond // a round of health probes
	// allowance is added to the recovery bound (one read interval plus the
	// read's own timeout): the sampler's period and a loaded machine's
	// scheduling.
	allowance = time.Second
)

// kind is a fault's family: it says how long the fault lasts and what the
// scaler must answer meanwhile.
type kind int

const (
	lasting  kind = iota // killed, hung, garbage: until past staleAfter
	flapping             // down/up every flapPeriod for flapFor
)

// cell is one row of the matrix.
type cell struct {
	source, fault string
	start         func(t *testing.T) (*source, faultFunc)
	// firstSight starts the scaler while the fault is on: the source has
	// no last good reading.
	firstSight bool
}

func (c cell) kind() kind {
	if c.fault == "flapping" {
		return flapping
	}
	return lasting
}

// cells lists the matrix in the order it is printed.
func cells() []cell {
	var out []cell
	add := func(src string, faults []string, start func(t *testing.T, fault string) (*source, faultFunc)) {
		for _, f := range faults {
			out = append(out, cell{source: src, fault: f, start: func(t *testing.T) (*source, faultFunc) { return start(t, f) }})
		}
	}
	add("Redis", []string{"killed", "hung", "garbage: the queue list is a string", "garbage: the unacked hash is a string", "flapping"},
		func(t *testing.T, f string) (*source, faultFunc) {
			rs := startRedis(t, f == "flapping")
			return rs.src, rs.faults()[f]
		})
	add("Prometheus", []string{"killed", "hung"}, func(t *testing.T, f string) (*source, faultFunc) {
		ps := startPrometheus(t, false)
		return ps.src, ps.faults()[f]
	})
	add("Prometheus", []string{"garbage: HTML", "garbage: invalid JSON", "garbage: status error", "garbage: three series"},
		func(t *testing.T, f string) (*source, faultFunc) {
			fp := startFakeProm(t)
			return fp.src, fp.faults()[f]
		})
	add("Prometheus", []string{"flapping"}, func(t *testing.T, f string) (*source, faultFunc) {
		ps := startPrometheus(t, true)
		return ps.src, ps.faults()[f]
	})
	add("calendar feed", []string{"killed", "hung", "garbage: binary", "garbage: 50 MB", "garbage: 404", "garbage: a valid feed turns invalid", "flapping"},
		func(t *testing.T, f string) (*source, faultFunc) {
			fs := startFeed(t, f == "flapping")
			return fs.src, fs.faults()[f]
		})
	// A calendar that has never had a good copy is no opinion, never a
	// reason to drop the other components: a scaler (re)started during a
	// feed outage still scales on its queue.
	out = append(out, cell{source: "calendar feed", fault: firstSight404, firstSight: true,
		start: func(t *testing.T) (*source, faultFunc) {
			fq := startFeedBesideQueue(t)
			return fq.src, fq.faults()[firstSight404]
		}})
	return out
}

// TestFaultMatrix runs every source × fault against the real binary and
// prints the matrix. In every cell: the process never crashes (and exits 0
// on SIGTERM at the end); gRPC health answers within healthBound (best of a
// round of three probes, every probeEvery; a round in which an idle serve,
// the control, was slow too is a stall of the machine, left out and
// counted); no GetMetrics answer is lower
// than the last good decision and no IsActive turns false (no invented 0);
// the last good reading is held until staleAfter, past it GetMetrics and
// IsActive are Unavailable naming the source (a calendar keeps its last
// good copy: it keeps answering); after the fault clears, the scaler
// answers from the source again within one read interval (plus the read's
// timeout and the allowance).
func TestFaultMatrix(t *testing.T) {
	bin := buildScaler(t)
	// The control: the same binary, idle, whose health a slow round is
	// compared with (see healthRound).
	control := startScaler(t, bin)
	all := cells()
	results := make([]result, len(all))
	t.Run("cells", func(t *testing.T) {
		bySource := map[string][]int{}
		var order []string
		for i, c := range all {
			if _, ok := bySource[c.source]; !ok {
				order = append(order, c.source)
			}
			bySource[c.source] = append(bySource[c.source], i)
		}
		for _, src := range order {
			t.Run(src, func(t *testing.T) {
				t.Parallel()
				for _, i := range bySource[src] {
					c := all[i]
					t.Run(c.fault, func(t *testing.T) {
						t.Parallel()
						// Kept if the cell stops early (t.Fatal): its row says so.
						results[i] = result{source: c.source, fault: c.fault, unavailable: -1, recovery: -1,
							failures: []string{"the cell stopped early: see its output"}}
						results[i] = runCell(t, bin, control, c)
						for _, f := range results[i].failures {
							t.Error(f)
						}
					})
				}
			})
		}
	})
	var b strings.Builder
	b.WriteString("\n| source | fault | failed reads | last good | lowest answer during the fault | Unavailable naming the source | health, worst round | recovery (bound) | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.source == "" {
			continue // not run (-run picked other cells)
		}
		b.WriteString(r.row() + "\n")
	}
	t.Logf("fault matrix (staleAfter %s, broker poll %s, latency read %s, calendar read %s; `make faults`):%s",
		staleAfter, pollInterval, latencyInterval, calendarRetry, b.String())
}

// result is one cell's figures and what failed.
type result struct {
	source, fault string
	src           *source
	lastGood      float64
	lowest        string        // the lowest answer during the fault
	unavailable   time.Duration // first Unavailable naming the source, since the fault began; -1 none
	healthWorst   time.Duration // the worst round's best probe, stalls of the machine left out
	healthStalls  int           // rounds left out: the idle control was slow too
	readErrors    int           // failed reads the scaler counted during the fault
	recovery      time.Duration // -1: none within the deadline
	bound         time.Duration
	failures      []string
}

func (r result) row() string {
	unav := "never"
	if r.unavailable >= 0 {
		unav = fmt.Sprintf("from +%.1f s", r.unavailable.Seconds())
	}
	rec := "none"
	if r.recovery >= 0 {
		rec = fmt.Sprintf("%.1f s", r.recovery.Seconds())
	}
	verdict := "ok"
	if len(r.failures) > 0 {
		short := make([]string, len(r.failures))
		for i, f := range r.failures {
			if rs := []rune(f); len(rs) > 240 {
				f = string(rs[:240]) + "…"
			}
			short[i] = f
		}
		verdict = "**FAIL**: " + strings.ReplaceAll(strings.Join(short, "; "), "|", "\\|")
	}
	health := fmt.Sprintf("%d ms", r.healthWorst.Milliseconds())
	if r.healthStalls > 0 {
		health += fmt.Sprintf(" (%d stalled rounds left out)", r.healthStalls)
	}
	return fmt.Sprintf("| %s | %s | %d | %g | %s | %s | %s | %s (≤ %.1f s) | %s |", r.source, r.fault, r.readErrors, r.lastGood, r.lowest, unav,
		health, rec, r.bound.Seconds(), verdict)
}

func (r *result) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// runCell sets the source up good, starts the scaler, waits for the good
// decision, runs the fault while sampling, clears it, waits for recovery and
// judges the samples. A first-sight cell starts the scaler during the fault.
func runCell(t *testing.T, bin string, control *scaler, c cell) result {
	src, fault := c.start(t)
	r := result{source: c.source, fault: c.fault, src: src, lastGood: src.good, unavailable: -1, recovery: -1,
		bound: src.interval + src.timeout + allowance}
	if fault == nil {
		t.Fatalf("no fault %q for %s", c.fault, c.source)
	}
	ref := &pb.ScaledObjectRef{Name: "montage", Namespace: "faults", ScalerMetadata: src.metadata}
	var (
		sc    *scaler
		sm    *sampler
		t0    time.Time
		clear clearFunc
	)
	errs0 := 0 // a new process counts from 0
	if c.firstSight {
		t0 = time.Now()
		clear = fault(t)
		sc = startScaler(t, bin)
		sm = startSampler(sc, control, ref)
	} else {
		sc = startScaler(t, bin)
		sm = startSampler(sc, control, ref)
		if _, ok := sm.waitFor(time.Now(), time.Minute, func(s sample) bool { return s.metrics.ok && s.metrics.value == src.good }); !ok {
			samples, _ := sm.snapshot()
			sm.stop()
			t.Fatalf("the good decision %g never came; last answer %v", src.good, last(samples).metrics)
		}
		errs0 = sc.sourceErrors(src.component)
		t0 = time.Now()
		clear = fault(t)
	}
	if c.kind() == lasting {
		// Until the scaler has seen the fault, and past staleAfter with room
		// for the read interval and timeout, plus a few seconds to watch
		// the answers there.
		deadline := t0.Add(2*calendarRetry + time.Minute)
		for {
			msg, err := sc.componentError(ref, src.component)
			if err == nil && msg != "" {
				break
			}
			if time.Now().After(deadline) {
				r.fail("the scaler never reported the fault (Explain's %s error stayed empty; last: %v)", src.component, err)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(time.Until(t0.Add(staleAfter + src.interval + src.timeout + time.Second + 3*time.Second)))
	}
	r.readErrors = sc.sourceErrors(src.component) - errs0
	t1 := time.Now()
	want := clear(t)
	tc := time.Now()
	if got, ok := sm.waitFor(t1, r.bound+time.Minute, func(s sample) bool { return s.metrics.ok && s.metrics.value == want }); ok {
		r.recovery = max(got.at.Sub(tc), 0)
	}
	sm.stop()
	exitCode := sc.stop()
	samples, probes := sm.snapshot()
	r.judge(c.kind(), samples, probes, t0, t1, want, exitCode)
	return r
}

// judge applies the matrix's rules to what the sampler saw: the fault ran
// from t0 to t1.
func (r *result) judge(k kind, samples []sample, probes []probe, t0, t1 time.Time, want float64, exitCode int) {
	src := r.src
	since := func(s sample) string { return fmt.Sprintf("+%.1f s", s.at.Sub(t0).Seconds()) }
	for _, s := range samples {
		if s.exited {
			r.fail("the process exited at %s", since(s))
			break
		}
	}
	if exitCode != 0 {
		r.fail("exit status %d on SIGTERM after the cell, want 0", exitCode)
	}

	// Health, the whole time: a round is slow when even its best probe took
	// longer than healthBound; it counts against the scaler unless the
	// control was slow then too (over half the bound: the machine stalled).
	var slow, stalled int
	for _, p := range probes {
		if p.err != nil && p.best == time.Hour {
			r.fail("health failed at +%.1f s: %v", p.at.Sub(t0).Seconds(), p.err)
			continue
		}
		if p.best <= healthBound {
			r.healthWorst = max(r.healthWorst, p.best)
			continue
		}
		if p.control > healthBound/2 {
			stalled++
			continue
		}
		slow++
		r.healthWorst = max(r.healthWorst, p.best)
	}
	r.healthStalls = stalled
	if slow > 0 {
		r.fail("health took more than %s (best of 3) in %d of %d rounds while the idle control answered in time; worst %s", healthBound, slow, len(probes), r.healthWorst.Round(time.Millisecond))
	}
	if stalled > len(probes)/4 {
		r.fail("the machine stalled in %d of %d health rounds (the idle control was slow too): too loaded to judge", stalled, len(probes))
	}

	// During the fault: never lower than the last good decision; held
	// before staleAfter (always, for a calendar and through a flap);
	// Unavailable naming the source past it. Each broken rule is reported
	// once, with how often and its first instance.
	var broken tally
	lowest, okCount := src.good+1, 0
	heldUntil := t0.Add(staleAfter - src.interval - src.timeout - 500*time.Millisecond)
	unavailableFrom := t0.Add(staleAfter + src.interval + src.timeout + time.Second)
	mustHold := !src.expires || k == flapping
	var pastStale int
	for _, s := range samples {
		if s.at.Before(t0) || s.at.After(t1) {
			continue
		}
		if s.metrics.ok {
			okCount++
			lowest = min(lowest, s.metrics.value)
			if s.metrics.value < r.lastGood-0.0005 {
				broken.add(fmt.Sprintf("GetMetrics below the last good %g", r.lastGood), "%s at %s", s.metrics, since(s))
			}
		}
		if s.active.ok && !s.active.active {
			broken.add("IsActive false (the last good answer was true)", "at %s", since(s))
		}
		if !s.metrics.ok && r.unavailable < 0 && s.metrics.code == codes.Unavailable && strings.Contains(s.metrics.msg, src.component+":") {
			r.unavailable = s.at.Sub(t0)
		}
		switch {
		case mustHold || s.at.Before(heldUntil):
			if !s.metrics.ok || !s.active.ok {
				broken.add(holdRule(src, k), "at %s GetMetrics %v, IsActive %v", since(s), s.metrics, s.active)
			}
		case s.at.After(unavailableFrom):
			pastStale++
			for _, a := range []struct {
				rpc string
				a   answer
			}{{"GetMetrics", s.metrics}, {"IsActive", s.active}} {
				if a.a.ok || a.a.code != codes.Unavailable || !strings.Contains(a.a.msg, src.component+":") {
					broken.add("past staleAfter, not Unavailable naming "+src.component, "at %s %s %v", since(s), a.rpc, a.a)
				}
			}
		}
	}
	r.failures = append(r.failures, broken.lines()...)
	switch {
	case okCount == 0:
		r.lowest = "no answer"
	case lowest == r.lastGood:
		r.lowest = fmt.Sprintf("%g (held)", lowest)
	default:
		r.lowest = fmt.Sprintf("%g", lowest)
	}
	if !mustHold {
		r.lowest += ", then Unavailable"
		if pastStale == 0 {
			r.fail("no answer was sampled past staleAfter (the fault ended too soon)")
		}
	}

	switch {
	case r.recovery < 0:
		r.fail("no answer %g within %s after the fault cleared", want, r.bound+time.Minute)
	case r.recovery > r.bound:
		r.fail("recovered %.1f s after the fault cleared, more than one read interval (%s) + its timeout (%s) + %s", r.recovery.Seconds(), src.interval, src.timeout, allowance)
	}
}

// holdRule names the rule an answer that is not a decision breaks.
func holdRule(src *source, k kind) string {
	switch {
	case !src.expires:
		return "no decision although a calendar never expires (it keeps its last good copy; before its first it has no opinion)"
	case k == flapping:
		return fmt.Sprintf("no decision during a flap (each outage is shorter than staleAfter %s)", staleAfter)
	default:
		return fmt.Sprintf("no decision before staleAfter %s (the last good reading must be held)", staleAfter)
	}
}

// tally counts the instances of each broken rule, in the order first seen.
type tally struct {
	rules []string
	n     map[string]int
	first map[string]string
}

func (t *tally) add(rule, format string, args ...any) {
	if t.n == nil {
		t.n, t.first = map[string]int{}, map[string]string{}
	}
	if t.n[rule] == 0 {
		t.rules = append(t.rules, rule)
		t.first[rule] = fmt.Sprintf(format, args...)
	}
	t.n[rule]++
}

func (t *tally) lines() []string {
	var out []string
	for _, r := range t.rules {
		out = append(out, fmt.Sprintf("%s: %d answers, the first %s", r, t.n[r], t.first[r]))
	}
	return out
}

func last(s []sample) sample {
	if len(s) == 0 {
		return sample{}
	}
	return s[len(s)-1]
}
