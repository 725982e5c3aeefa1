package source

import (
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/registry"
)

// Objects are a hub's live sources by ScaledObject: what the hub's own
// collector reads at scrape time, so that a component exports its
// per-ScaledObject series from its current readings, and a source closed
// (its watch dropped) takes its series with it. Safe for concurrent use.
type Objects struct {
	mu   sync.Mutex
	seq  uint64
	live map[*tracked]struct{}
}

type tracked struct {
	registry.Source
	o               *Objects
	namespace, name string
	seq             uint64
	staleAfter      time.Duration
	once            sync.Once
}

// Close untracks the source, then closes it.
func (t *tracked) Close() {
	t.once.Do(func() {
		t.o.mu.Lock()
		delete(t.o.live, t)
		t.o.mu.Unlock()
	})
	t.Source.Close()
}

// Track returns src, made for r, tracked until it is closed.
func (o *Objects) Track(r Request, src registry.Source) registry.Source {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.live == nil {
		o.live = map[*tracked]struct{}{}
	}
	o.seq++
	t := &tracked{Source: src, o: o, namespace: r.Namespace, name: r.Name, seq: o.seq, staleAfter: r.Policy.StaleAfter}
	o.live[t] = struct{}{}
	return t
}

// ObjectReading is one ScaledObject's latest reading of a component.
type ObjectReading struct {
	Namespace, Name string
	Reading         decide.Reading
	// Fresh says the reading takes part in a decision at now: it has a
	// good value, and it is not past staleAfter while its refresh fails
	// (decide.Decide's rule). A series of a reading that is not fresh is
	// dropped, never left at an old value.
	Fresh bool
}

// Latest returns each tracked ScaledObject's reading at now, from its
// newest source (a ScaledObject whose metadata changed has a source per
// version until the old one is dropped; the newest is the one KEDA asks).
func (o *Objects) Latest(now time.Time) []ObjectReading {
	o.mu.Lock()
	newest := map[[2]string]*tracked{}
	for t := range o.live {
		k := [2]string{t.namespace, t.name}
		if n := newest[k]; n == nil || t.seq > n.seq {
			newest[k] = t
		}
	}
	o.mu.Unlock()
	out := make([]ObjectReading, 0, len(newest))
	for _, t := range newest {
		r := t.Reading(now)
		fresh := !r.GoodAt.IsZero() && (r.Err == nil || r.NoExpiry || now.Sub(r.GoodAt) <= t.staleAfter)
		out = append(out, ObjectReading{Namespace: t.namespace, Name: t.name, Reading: r, Fresh: fresh})
	}
	return out
}
