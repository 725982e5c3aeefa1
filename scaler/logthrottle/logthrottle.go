// Package logthrottle keeps a noisy fault from flooding the log: a
// slog.Handler that writes the first of identical error lines, then at most
// one per window, saying how many it held back.
package logthrottle

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"
)

// MaxTracked bounds how many distinct lines the handler remembers; beyond
// it, lines it has not seen pass unthrottled rather than grow its memory.
const MaxTracked = 4096

// New wraps next. A record is throttled when it is at WARN or above, or
// carries an error attribute ("err" or "error"): two such records are
// identical when their level, message and attributes (the logger's
// included) are equal once every run of digits is read as one digit, since
// ports, durations, counters and ages differ between repeats of one fault.
// The first of identical records is written; the next ones within window
// are counted, not written; the first after the window is written with
// "suppressed": N. Other records (a finished RPC at debug level) pass
// untouched. now is the clock (nil: the records' own time).
func New(next slog.Handler, window time.Duration, now func() time.Time) slog.Handler {
	return &handler{next: next, st: &state{window: window, now: now, seed: maphash.MakeSeed(), seen: map[uint64]*entry{}}}
}

type state struct {
	window time.Duration
	now    func() time.Time
	seed   maphash.Seed

	mu      sync.Mutex
	seen    map[uint64]*entry
	sweptAt time.Time // the last pass over a full map
}

type entry struct {
	written    time.Time
	suppressed int
}

type handler struct {
	next   slog.Handler
	st     *state
	prefix string // the attributes and groups of WithAttrs and WithGroup, as key text
	hasErr bool   // an error among them
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	b := []byte(c.prefix)
	for _, a := range as {
		b = appendAttr(b, a)
		c.hasErr = c.hasErr || isErr(a)
	}
	c.prefix = string(b)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.prefix += name + "{"
	return &c
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	hasErr := h.hasErr
	r.Attrs(func(a slog.Attr) bool {
		hasErr = hasErr || isErr(a)
		return !hasErr
	})
	if r.Level < slog.LevelWarn && !hasErr {
		return h.next.Handle(ctx, r)
	}
	key := make([]byte, 0, 256)
	key = append(key, r.Level.String()...)
	key = appendCollapsed(key, r.Message)
	key = append(key, h.prefix...)
	r.Attrs(func(a slog.Attr) bool {
		key = appendAttr(key, a)
		return true
	})
	at := r.Time
	if h.st.now != nil || at.IsZero() {
		at = h.now()
	}
	write, n := h.st.allow(maphash.Bytes(h.st.seed, key), at)
	if !write {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) now() time.Time {
	if h.st.now != nil {
		return h.st.now()
	}
	return time.Now()
}

// allow says whether the line with this key is written at now, and how
// many identical lines were held back since the last one written.
func (s *state) allow(key uint64, now time.Time) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.seen[key]
	if ok && now.Sub(e.written) < s.window {
		e.suppressed++
		return false, 0
	}
	if !ok && len(s.seen) >= MaxTracked {
		if now.Sub(s.sweptAt) >= s.window/10 { // a pass at most ten times a window
			s.sweptAt = now
			for k, old := range s.seen {
				if now.Sub(old.written) >= s.window && old.suppressed == 0 {
					delete(s.seen, k)
				}
			}
		}
		if len(s.seen) >= MaxTracked {
			return true, 0
		}
	}
	n := 0
	if ok {
		n = e.suppressed
	}
	s.seen[key] = &entry{written: now}
	return true, n
}

func isErr(a slog.Attr) bool { return a.Key == "err" || a.Key == "error" }

// appendAttr appends key=value (groups flattened) with digits collapsed.
func appendAttr(b []byte, a slog.Attr) []byte {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		b = append(b, a.Key...)
		b = append(b, '{')
		for _, g := range v.Group() {
			b = appendAttr(b, g)
		}
		return append(b, '}')
	}
	b = append(b, ' ')
	b = append(b, a.Key...)
	b = append(b, '=')
	return appendCollapsed(b, v.String())
}

// appendCollapsed appends s with every run of ASCII digits as one '#'.
func appendCollapsed(b []byte, s string) []byte {
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if !digits {
				b = append(b, '#')
			}
			digits = true
			continue
		}
		digits = false
		b = append(b, c)
	}
	return b
}
