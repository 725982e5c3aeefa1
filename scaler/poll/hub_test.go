package poll

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// countingHub starts a poller per key that returns the key, counting starts
// and stops.
func countingHub(t *testing.T) (*Hub[string, int, string, string], *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var started, stopped atomic.Int64
	h := NewHub(func(key string, _ int, _ func() []int) *Poller[string] {
		started.Add(1)
		return Start(func(ctx context.Context) (string, error) { return key, nil },
			Options{Interval: time.Hour, OnStop: func() { stopped.Add(1) }})
	})
	return h, &started, &stopped
}

func TestHubSharesOnePollerPerKeyAndStopsItWithTheLastHolder(t *testing.T) {
	h, started, stopped := countingHub(t)
	a := h.Acquire("redis://a", 1)
	b := h.Acquire("redis://a", 2)
	c := h.Acquire("redis://c", 3)
	if started.Load() != 2 || h.Len() != 2 {
		t.Fatalf("sharing: started %d, len %d; want 2, 2", started.Load(), h.Len())
	}
	a.Close()
	a.Close() // a second Close of the same View must not count twice
	if h.Len() != 2 || stopped.Load() != 0 {
		t.Fatalf("after one of two holders closed: len %d, stopped %d; want 2, 0", h.Len(), stopped.Load())
	}
	if s, err := b.First(within(t)); err != nil || s.Value != "redis://a" {
		t.Fatalf("the remaining holder's First = %+v, %v", s, err)
	}
	b.Close()
	c.Close()
	if h.Len() != 0 || stopped.Load() != 2 {
		t.Fatalf("after all closed: len %d, stopped %d; want 0, 2", h.Len(), stopped.Load())
	}
}

// TestAClosedWatchBehavesTheSameWhoeverClosedIt pins the one documented
// behaviour: last snapshot kept with ErrClosed, nil Changed, First at once.
func TestAClosedWatchBehavesTheSameWhoeverClosedIt(t *testing.T) {
	closers := map[string]func(h *Hub[string, int, string, string], w *View[string]){
		"the watch itself": func(_ *Hub[string, int, string, string], w *View[string]) { w.Close() },
		"its hub":          func(h *Hub[string, int, string, string], _ *View[string]) { h.Close() },
	}
	for name, closeIt := range closers {
		t.Run(name, func(t *testing.T) {
			h, _, stopped := countingHub(t)
			w := h.Acquire("k", 0)
			before, err := w.First(within(t))
			if err != nil {
				t.Fatal(err)
			}
			closeIt(h, w)
			s := w.Latest()
			if !errors.Is(s.Err, ErrClosed) || s.Value != "k" || !s.GoodAt.Equal(before.GoodAt) {
				t.Fatalf("Latest after close = %+v, want the last value with ErrClosed", s)
			}
			if ch := w.Changed(); ch != nil {
				t.Fatal("Changed after close is not nil")
			}
			if _, err := w.First(within(t)); !errors.Is(err, ErrClosed) {
				t.Fatalf("First after close = %v, want ErrClosed", err)
			}
			if stopped.Load() != 1 || h.Len() != 0 {
				t.Fatalf("poller stopped %d times, %d left; want 1, 0", stopped.Load(), h.Len())
			}
		})
	}
	t.Run("a watch acquired after the hub closed", func(t *testing.T) {
		h, started, _ := countingHub(t)
		h.Close()
		w := h.Acquire("k", 0)
		if s := w.Latest(); !errors.Is(s.Err, ErrClosed) || s.Attempts != 0 || !s.GoodAt.IsZero() {
			t.Fatalf("Latest = %+v, want an empty snapshot with ErrClosed", s)
		}
		if _, err := w.First(within(t)); !errors.Is(err, ErrClosed) || w.Changed() != nil || started.Load() != 0 {
			t.Fatalf("First = %v, Changed nil %t, started %d", err, w.Changed() == nil, started.Load())
		}
		w.Close()
	})
}

// TestAViewShowsEachHolderItsPartAndANewHolderIsReadAtOnce: a poll over
// every holder's config (one broker, many layouts), each holder seeing its
// own part, and First waiting until that part has been read.
func TestAViewShowsEachHolderItsPartAndANewHolderIsReadAtOnce(t *testing.T) {
	type parts map[int]bool
	h := NewViewHub(func(_ string, _ int, members func() []int) *Poller[parts] {
		return Start(func(ctx context.Context) (parts, error) {
			out := parts{}
			for _, m := range members() {
				out[m] = true
			}
			return out, nil
		}, Options{Interval: time.Hour})
	}, func(cfg int, s Snapshot[parts]) Snapshot[parts] {
		if s.Err == nil && !s.Value[cfg] {
			s.Attempts = 0 // not read for this holder yet
		}
		return s
	})
	defer h.Close()
	a := h.Acquire("broker", 1)
	if s, err := a.First(within(t)); err != nil || !s.Value[1] {
		t.Fatalf("first holder: %+v, %v", s, err)
	}
	// The poller's next attempt is an hour away: only the Poke of the join
	// can read the new holder's part.
	b := h.Acquire("broker", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.First(ctx)
	if err != nil || !s.Value[2] || !s.Value[1] {
		t.Fatalf("second holder: %+v, %v", s, err)
	}
	b.Close()
	a.Poke()
	for {
		ch := a.Changed()
		if s := a.Latest(); s.Attempts >= 3 {
			got := []int{}
			for k := range s.Value {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, []int{1}) {
				t.Fatalf("after the second holder left the poll read %v, want [1]", got)
			}
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("no third attempt")
		}
	}
}

func TestEachSeesEveryKeysSnapshot(t *testing.T) {
	h, _, _ := countingHub(t)
	defer h.Close()
	for _, k := range []string{"a", "b"} {
		if _, err := h.Acquire(k, 0).First(within(t)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]string{}
	h.Each(func(k string, s Snapshot[string]) { seen[k] = s.Value })
	if len(seen) != 2 || seen["a"] != "a" || seen["b"] != "b" {
		t.Fatalf("Each saw %v", seen)
	}
}

func TestPartIsOneHoldersViewOfAPollOfParts(t *testing.T) {
	at := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	down, refused, warming := errors.New("dial: refused"), errors.New("NOAUTH"), NotReadYet("waiting for heartbeats")
	earlier := at.Add(-time.Minute)
	wrongType := errors.New("LLEN \"video\": WRONGTYPE")
	read := Parts[int]{Of: map[string]int{"a": 7, "d": 5}, Errs: map[string]error{"b": refused, "e": warming, "d": wrongType}, At: map[string]time.Time{"d": earlier}}
	tests := []struct {
		name         string
		s            Snapshot[Parts[int]]
		id           string
		want         int
		wantGood     bool
		wantGoodAt   time.Time
		wantErr      error
		wantAttempts uint64
	}{
		{"its part, read at the poll's time", Snapshot[Parts[int]]{Value: read, GoodAt: at, TriedAt: at, Attempts: 3}, "a", 7, true, at, nil, 3},
		{"a failed poll keeps the part's last good value", Snapshot[Parts[int]]{Value: read, GoodAt: at, TriedAt: at, Attempts: 4, Err: down}, "a", 7, true, at, down, 4},
		{"the part's own error is a reading", Snapshot[Parts[int]]{Value: read, GoodAt: at, TriedAt: at, Attempts: 3}, "b", 0, false, time.Time{}, refused, 3},
		{"or, when it wraps ErrNotReadYet, not read yet", Snapshot[Parts[int]]{Value: read, GoodAt: at, TriedAt: at, Attempts: 3}, "e", 0, false, time.Time{}, warming, 0},
		{"a holder the poll has not read yet", Snapshot[Parts[int]]{Value: read, GoodAt: at, TriedAt: at, Attempts: 3}, "c", 0, false, time.Time{}, nil, 0},
		{"a failed poll reaches a holder never read", Snapshot[Parts[int]]{TriedAt: at, Attempts: 1, Err: down}, "c", 0, false, time.Time{}, down, 1},
		{"a part that failed alone keeps its own last good value and time", Snapshot[Parts[int]]{Value: read, GoodAt: at, TriedAt: at, Attempts: 3}, "d", 5, true, earlier, wrongType, 3},
		{"and a failed poll says its own error", Snapshot[Parts[int]]{Value: read, GoodAt: at, TriedAt: at, Attempts: 4, Err: down}, "d", 5, true, earlier, down, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Part(tc.s, tc.id)
			if got.Value != tc.want || got.GoodAt.IsZero() == tc.wantGood || !got.GoodAt.Equal(tc.wantGoodAt) || !errors.Is(got.Err, tc.wantErr) || (tc.wantErr == nil) != (got.Err == nil) || got.Attempts != tc.wantAttempts {
				t.Fatalf("Part = %+v; want value %d, good %t, err %v, attempts %d", got, tc.want, tc.wantGood, tc.wantErr, tc.wantAttempts)
			}
		})
	}
}

// TestAcquireFirstHandsEveryHolderWhatStartMadeForTheFirst: a poll that owns
// a client keeps it in its first holder's config, and every later holder of
// the key reaches it there, whoever of them has left since.
func TestAcquireFirstHandsEveryHolderWhatStartMadeForTheFirst(t *testing.T) {
	type holder struct{ conn string }
	h := NewHub(func(key string, first *holder, _ func() []*holder) *Poller[string] {
		first.conn = "client of " + key
		return Start(func(ctx context.Context) (string, error) { return key, nil }, Options{Interval: time.Hour})
	})
	a, firstA := h.AcquireFirst("redis://a", &holder{})
	b, firstB := h.AcquireFirst("redis://a", &holder{})
	a.Close()
	c, firstC := h.AcquireFirst("redis://a", &holder{})
	for _, f := range []*holder{firstA, firstB, firstC} {
		if f == nil || f.conn != "client of redis://a" {
			t.Fatalf("first = %+v, want the holder start was given", f)
		}
	}
	b.Close()
	c.Close()
	h.Close()
	if w, first := h.AcquireFirst("redis://a", &holder{}); first != nil || !errors.Is(w.Latest().Err, ErrClosed) {
		t.Fatalf("on a closed hub: first %+v, err %v; want nil, ErrClosed", first, w.Latest().Err)
	}
}

// TestStartMayAskForTheMembers: start runs under the Hub's lock, and the
// members are guarded apart, so a start that asks for them (to size its
// first read) does not deadlock, and sees its first holder.
func TestStartMayAskForTheMembers(t *testing.T) {
	var seen []int
	h := NewHub(func(key string, _ int, members func() []int) *Poller[string] {
		seen = members()
		return Start(func(context.Context) (string, error) { return key, nil }, Options{Interval: time.Hour})
	})
	defer h.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Acquire("a", 7).Close()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return: start asking for the members deadlocks")
	}
	if len(seen) != 1 || seen[0] != 7 {
		t.Fatalf("start saw members %v, want [7]", seen)
	}
}
