// Package quota bounds what the watches of the whole process hold, beyond
// each trigger's own limits: the distinct upstreams they reach (brokers,
// Prometheus endpoints, scrape targets, feeds) and the broker lists their
// polls read, per namespace (a tenant) and per process, and the lists per
// broker. A watch reserves all its claims at once before any of its
// sources is made, and gives them back when it is closed; a claim beyond a
// limit refuses the newcomer and never evicts a running watch.
package quota

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ErrExhausted is what every refusal wraps (gRPC ResourceExhausted).
var ErrExhausted = errors.New("resource exhausted")

// Kind is what a claim counts, in the plural.
type Kind string

// The kinds the scaler counts. Lists is an amount (the Redis lists a
// broker's poll reads); the others count distinct upstreams, so that a
// second watch on the same upstream costs nothing more.
const (
	Brokers             Kind = "brokers"
	PrometheusEndpoints Kind = "prometheus endpoints"
	ScrapeTargets       Kind = "scrape targets"
	Feeds               Kind = "feeds"
	Lists               Kind = "lists"
)

// Claim is one thing a watch holds.
type Claim struct {
	Kind Kind
	// Key tells upstreams apart (a broker's connection key, a URL); it is
	// never shown. For an amount it is the upstream the amount lands on
	// (the broker whose poll reads the lists).
	Key string
	// Shown names the upstream in errors, credentials redacted.
	Shown string
	// Amount, when above 0, is added up (lists); 0 counts Key as one
	// distinct upstream.
	Amount int
}

// Limit is one bound: its value and the flag that sets it. A Max of 0 or
// less is no bound.
type Limit struct {
	Max  int
	Flag string
}

// Limits bound one kind: per process, per namespace and, for an amount
// kind, per upstream (per Claim.Key).
type Limits struct {
	Process, Namespace, Upstream Limit
}

// Error is a refusal: which limit, where, and the upstream that would
// pass it.
type Error struct {
	Kind   Kind
	Amount bool
	Limit  Limit
	// Scope is "the process", `namespace "x"` or the upstream's Shown.
	Scope string
	// Shown is the upstream of the claim refused.
	Shown string
	// Have is what the scope holds; Would what the claim makes of it.
	Have, Would int
}

// Error says which limit, where, and which upstream: "resource exhausted:
// redis://h:6379/5 would be broker number 65 of the process, beyond
// --max-brokers 64 (…)".
func (e *Error) Error() string {
	const kept = "running watches are kept; a watch's share is freed when it has been idle for --idle-after"
	if e.Amount {
		return fmt.Sprintf("%s: %d more %s on %s would make %d in %s, beyond %s %d (%s)",
			ErrExhausted, e.Would-e.Have, e.Kind, e.Shown, e.Would, e.Scope, e.Limit.Flag, e.Limit.Max, kept)
	}
	return fmt.Sprintf("%s: %s would be %s number %d of %s, beyond %s %d (%s)",
		ErrExhausted, e.Shown, strings.TrimSuffix(string(e.Kind), "s"), e.Would, e.Scope, e.Limit.Flag, e.Limit.Max, kept)
}

func (e *Error) Unwrap() error { return ErrExhausted }

// Ledger keeps what every watch holds. The zero Ledger is not usable; get
// one from New.
type Ledger struct {
	limits map[Kind]Limits

	mu        sync.Mutex
	process   map[Kind]*tally
	namespace map[string]map[Kind]*tally
}

// tally is one scope's holdings of one kind: per key, a reference count
// (distinct kinds) or the amount (amount kinds).
type tally struct {
	byKey map[string]int
	total int // distinct keys, or the sum of amounts
}

// New returns a Ledger with the limits of each kind; a kind it is not
// given is unbounded.
func New(limits map[Kind]Limits) *Ledger {
	return &Ledger{limits: limits, process: map[Kind]*tally{}, namespace: map[string]map[Kind]*tally{}}
}

// Reserve takes claims for a watch in namespace, all or none, and returns
// the function that gives them back (call it once, when the watch is
// closed). The first claim beyond a limit is the *Error returned.
func (l *Ledger) Reserve(namespace string, claims []Claim) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ns := l.namespace[namespace]
	if ns == nil {
		ns = map[Kind]*tally{}
	}
	if err := l.check(namespace, ns, claims); err != nil {
		return nil, err
	}
	l.namespace[namespace] = ns
	for _, c := range claims {
		add(l.process, c, 1)
		add(ns, c, 1)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, c := range claims {
				add(l.process, c, -1)
				add(ns, c, -1)
			}
			if len(ns) == 0 {
				delete(l.namespace, namespace)
			}
		})
	}, nil
}

// check judges claims against what is held, counting the claims of this
// reservation among themselves too (two lists claims on one broker).
func (l *Ledger) check(namespace string, ns map[Kind]*tally, claims []Claim) error {
	process, nsHeld := map[Kind]*tally{}, map[Kind]*tally{}
	clone := func(dst, src map[Kind]*tally, k Kind) {
		if _, ok := dst[k]; ok {
			return
		}
		t := &tally{byKey: map[string]int{}}
		if s := src[k]; s != nil {
			t.total = s.total
			for key, n := range s.byKey {
				t.byKey[key] = n
			}
		}
		dst[k] = t
	}
	for _, c := range claims {
		lim := l.limits[c.Kind]
		clone(process, l.process, c.Kind)
		clone(nsHeld, ns, c.Kind)
		for _, s := range []struct {
			held  *tally
			limit Limit
			scope string
		}{
			{process[c.Kind], lim.Process, "the process"},
			{nsHeld[c.Kind], lim.Namespace, fmt.Sprintf("namespace %q", namespace)},
		} {
			if err := judge(c, s.held, s.limit, s.scope); err != nil {
				return err
			}
		}
		if c.Amount > 0 && lim.Upstream.Max > 0 {
			have := process[c.Kind].byKey[c.Key]
			if have+c.Amount > lim.Upstream.Max {
				return &Error{Kind: c.Kind, Amount: true, Limit: lim.Upstream, Scope: "its shared poll", Shown: c.Shown, Have: have, Would: have + c.Amount}
			}
		}
		add(process, c, 1)
		add(nsHeld, c, 1)
	}
	return nil
}

func judge(c Claim, held *tally, limit Limit, scope string) error {
	if limit.Max <= 0 {
		return nil
	}
	if c.Amount > 0 {
		if held.total+c.Amount > limit.Max {
			return &Error{Kind: c.Kind, Amount: true, Limit: limit, Scope: scope, Shown: c.Shown, Have: held.total, Would: held.total + c.Amount}
		}
		return nil
	}
	if held.byKey[c.Key] == 0 && held.total+1 > limit.Max {
		return &Error{Kind: c.Kind, Limit: limit, Scope: scope, Shown: c.Shown, Have: held.total, Would: held.total + 1}
	}
	return nil
}

// add applies a claim (sign 1) or gives it back (sign -1).
func add(scope map[Kind]*tally, c Claim, sign int) {
	t := scope[c.Kind]
	if t == nil {
		t = &tally{byKey: map[string]int{}}
		scope[c.Kind] = t
	}
	if c.Amount > 0 {
		t.byKey[c.Key] += sign * c.Amount
		t.total += sign * c.Amount
	} else {
		before := t.byKey[c.Key]
		t.byKey[c.Key] += sign
		switch {
		case before == 0 && sign > 0:
			t.total++
		case before == 1 && sign < 0:
			t.total--
		}
	}
	if t.byKey[c.Key] == 0 {
		delete(t.byKey, c.Key)
	}
	if len(t.byKey) == 0 {
		delete(scope, c.Kind)
	}
}

// Usage is what one kind holds in the process: distinct upstreams, or the
// sum of amounts.
func (l *Ledger) Usage(k Kind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.process[k]; t != nil {
		return t.total
	}
	return 0
}
