package poll

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is the error a View reports once it, or its Hub, is closed.
var ErrClosed = errors.New("watch closed")

// StartFunc starts the Poller of a key for its first holder, whose config
// is first. members returns the configs of the key's current holders, for a
// poll that reads what each of them needs (one broker, many queue layouts);
// most polls ignore it. It may be called at any time, from start too.
type StartFunc[K comparable, C any, T any] func(key K, first C, members func() []C) *Poller[T]

// ViewFunc is one holder's view of the shared snapshot, for a poll whose
// value holds one part per holder. A view whose Attempts is zero says "not
// read for this holder yet": First keeps waiting.
type ViewFunc[C any, R any, T any] func(cfg C, s Snapshot[R]) Snapshot[T]

// Hub shares one Poller per key among every View of that key: N
// ScaledObjects on one upstream cost one poll. The Poller starts with the
// key's first View and stops (Options.OnStop runs) with its last. K is the
// key, C a holder's config, R what the Poller reads, T what a holder sees.
type Hub[K comparable, C any, R any, T any] struct {
	start StartFunc[K, C, R]
	view  ViewFunc[C, R, T]
	// pokeOnJoin: a holder joining a running Poller has a part of its own
	// that has not been read yet.
	pokeOnJoin bool

	mu      sync.Mutex
	entries map[K]*entry[C, R, T]
	closed  bool
}

type entry[C any, R any, T any] struct {
	poller *Poller[R]
	first  C // the config the Poller was started with
	// mu guards members alone, so that the poll may ask for them at any
	// time (start included) without the Hub's lock. Lock order: Hub.mu,
	// then mu.
	mu      sync.Mutex
	members map[*View[T]]C
}

// add makes w a member with cfg.
func (e *entry[C, R, T]) add(w *View[T], cfg C) {
	e.mu.Lock()
	e.members[w] = cfg
	e.mu.Unlock()
}

// remove drops w and reports how many members are left.
func (e *entry[C, R, T]) remove(w *View[T]) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.members, w)
	return len(e.members)
}

// configs are the members' configs.
func (e *entry[C, R, T]) configs() []C {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]C, 0, len(e.members))
	for _, c := range e.members {
		out = append(out, c)
	}
	return out
}

// NewHub returns a Hub whose holders all see the whole snapshot; it calls
// start the first time a key is acquired.
func NewHub[K comparable, C any, T any](start StartFunc[K, C, T]) *Hub[K, C, T, T] {
	return &Hub[K, C, T, T]{start: start, view: func(_ C, s Snapshot[T]) Snapshot[T] { return s }, entries: map[K]*entry[C, T, T]{}}
}

// NewViewHub returns a Hub whose poll reads a part per holder (through
// members) and whose holders each see their part through view. A holder
// joining a running Poller asks for an attempt at once.
func NewViewHub[K comparable, C any, R any, T any](start StartFunc[K, C, R], view ViewFunc[C, R, T]) *Hub[K, C, R, T] {
	return &Hub[K, C, R, T]{start: start, view: view, pokeOnJoin: true, entries: map[K]*entry[C, R, T]{}}
}

// Acquire returns a View on key's shared Poller, starting it with cfg when
// the key is new. Close the View when done. On a closed Hub the View is
// born closed.
func (h *Hub[K, C, R, T]) Acquire(key K, cfg C) *View[T] {
	w, _ := h.AcquireFirst(key, cfg)
	return w
}

// AcquireFirst is Acquire that also returns the config key's Poller was
// started with: cfg itself when the key is new, the zero C on a closed Hub.
// What start keeps in it (C a pointer: a client the poll owns) so reaches
// every holder, and stays good while the holder's View is open.
func (h *Hub[K, C, R, T]) AcquireFirst(key K, cfg C) (_ *View[T], first C) {
	w := &View[T]{}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		w.closed, w.last.Err = true, ErrClosed
		return w, first
	}
	e, joined := h.entries[key]
	if !joined {
		e = &entry[C, R, T]{first: cfg, members: map[*View[T]]C{w: cfg}}
		h.entries[key] = e
		e.poller = h.start(key, cfg, e.configs)
	} else {
		e.add(w, cfg)
	}
	p := e.poller
	w.latest = func() Snapshot[T] { return h.view(cfg, p.Latest()) }
	w.changed = p.Changed
	w.poke = p.Poke
	w.release = func() { h.release(key, e, w) }
	first = e.first
	h.mu.Unlock()
	if joined && h.pokeOnJoin {
		p.Poke()
	}
	return w, first
}

func (h *Hub[K, C, R, T]) release(key K, e *entry[C, R, T], w *View[T]) {
	h.mu.Lock()
	last := e.remove(w) == 0 && h.entries[key] == e
	if last {
		delete(h.entries, key)
	}
	h.mu.Unlock()
	if last {
		e.poller.Stop()
	}
}

// Each calls fn with every key and its Poller's latest snapshot, outside
// the lock.
func (h *Hub[K, C, R, T]) Each(fn func(key K, s Snapshot[R])) {
	h.mu.Lock()
	keys := make([]K, 0, len(h.entries))
	pollers := make([]*Poller[R], 0, len(h.entries))
	for k, e := range h.entries {
		keys = append(keys, k)
		pollers = append(pollers, e.poller)
	}
	h.mu.Unlock()
	for i, k := range keys {
		fn(k, pollers[i].Latest())
	}
}

// Len reports how many Pollers run.
func (h *Hub[K, C, R, T]) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.entries)
}

// Close closes every View (see View) and so stops every Poller. Later
// Acquires return closed Views.
func (h *Hub[K, C, R, T]) Close() {
	h.mu.Lock()
	h.closed = true
	var ws []*View[T]
	for _, e := range h.entries {
		e.mu.Lock()
		for w := range e.members {
			ws = append(ws, w)
		}
		e.mu.Unlock()
	}
	h.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
}

// View is one holder's view of a shared Poller.
//
// Once closed — by its Close or by the Hub's — a View keeps the last
// snapshot it saw, with Err set to ErrClosed (the last good value and its
// GoodAt stay: they are still facts, and they age like any failing
// source's); Changed returns nil, on which a receive blocks forever (select
// on it with a done channel of your own); First returns at once with
// ErrClosed. A View made by a closed Hub is closed from the start, with an
// empty snapshot.
type View[T any] struct {
	latest  func() Snapshot[T]
	changed func() <-chan struct{}
	poke    func()
	release func()

	mu     sync.Mutex
	closed bool
	last   Snapshot[T]
}

// Latest returns the current snapshot without waiting.
func (w *View[T]) Latest() Snapshot[T] {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.last
	}
	return w.latest()
}

// Changed returns a channel closed when the next attempt finishes; nil once
// the View is closed.
func (w *View[T]) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	return w.changed()
}

// Poke asks the shared Poller for an attempt now (after a write that the
// next reading should show).
func (w *View[T]) Poke() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.poke()
	}
}

// First waits until this View has a first reading (an attempt finished
// that counts for it, good or failed) or ctx is done, and returns the
// snapshot then.
func (w *View[T]) First(ctx context.Context) (Snapshot[T], error) {
	for {
		w.mu.Lock()
		if w.closed {
			s := w.last
			w.mu.Unlock()
			return s, ErrClosed
		}
		ch := w.changed()
		s := w.latest()
		w.mu.Unlock()
		if s.Attempts > 0 {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
}

// Close releases the View; the shared Poller stops with its last View.
// Calling Close again does nothing.
func (w *View[T]) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.last = w.latest()
	w.last.Err = ErrClosed
	w.closed = true
	w.mu.Unlock()
	w.release()
}

// Parts is the value of a poll that reads one part per holder of a key (a
// broker's queue layouts, a broker's histories): each holder's part by an
// id of its own, or the error of that part alone. A part that failed alone
// may keep its last good value in Of, with the time it was read in At and
// its error in Errs: its holder goes on with it, held, as with a failed
// poll.
type Parts[T any] struct {
	Of   map[string]T
	Errs map[string]error
	// At is when a part of Of was read, for a part read before this poll
	// (held); a part without it was read at the snapshot's GoodAt.
	At map[string]time.Time
}

// NewParts returns empty Parts.
func NewParts[T any]() Parts[T] {
	return Parts[T]{Of: map[string]T{}, Errs: map[string]error{}, At: map[string]time.Time{}}
}

// ErrNotReadYet, wrapped by a part's error, says the poll has not read
// the part yet (the celery layout that waits for worker heartbeats): no
// reading, and First keeps waiting, instead of a failed read.
var ErrNotReadYet = errors.New("not read yet")

// NotReadYet is an error saying msg that wraps ErrNotReadYet.
func NotReadYet(msg string) error { return notReadYet(msg) }

type notReadYet string

func (e notReadYet) Error() string        { return string(e) }
func (e notReadYet) Is(target error) bool { return target == ErrNotReadYet }

// Part is the view of holder id: its part, read at the snapshot's GoodAt
// (or at its own At, when held), with the error of the poll or of its part
// alone; else the error of its part alone (a reading, as a failed poll is,
// unless it wraps ErrNotReadYet: First then keeps waiting); else, when the
// poll worked without its part (the holder joined since), no reading yet.
// A failed poll reaches every part, which keeps its last good value.
func Part[T any](s Snapshot[Parts[T]], id string) Snapshot[T] {
	out := Snapshot[T]{Err: s.Err, TriedAt: s.TriedAt, Attempts: s.Attempts}
	err, failed := s.Value.Errs[id]
	if v, ok := s.Value.Of[id]; ok {
		out.Value, out.GoodAt = v, s.GoodAt
		if at, held := s.Value.At[id]; held {
			out.GoodAt = at
		}
		if out.Err == nil && failed {
			out.Err = err
		}
		return out
	}
	if s.Err != nil {
		return out
	}
	if !failed || errors.Is(err, ErrNotReadYet) {
		out.TriedAt, out.Attempts = time.Time{}, 0
	}
	out.Err = err
	return out
}
