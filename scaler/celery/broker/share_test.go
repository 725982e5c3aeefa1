package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/test/servers"
)

func TestWatchesOnOneBrokerShareOnePoller(t *testing.T) {
	r := servers.StartRedis(t)
	h := broker.NewHub(broker.HubOptions{PollInterval: 50 * time.Millisecond})
	defer h.Close()
	b1, _ := celery.ParseBrokerURL(r.URL(0), "")
	b2, _ := celery.ParseBrokerURL("redis://"+r.Addr(), "") // same broker, spelled differently
	b3, _ := celery.ParseBrokerURL(r.URL(1), "")
	w1 := h.Watch(b1, celery.DefaultLayout("a"))
	w2 := h.Watch(b2, celery.DefaultLayout("b"))
	w3 := h.Watch(b3, celery.DefaultLayout("a"))
	if n := h.Pollers(); n != 2 {
		t.Fatalf("%d pollers, want 2 (db 0 and db 1)", n)
	}
	for _, w := range []*poll.View[celery.Backlog]{w1, w2, w3} {
		if s, err := w.First(t.Context()); err != nil || s.Err != nil || s.GoodAt.IsZero() {
			t.Fatalf("First: %+v, %v", s, err)
		}
	}
	w1.Close()
	w1.Close()
	if n := h.Pollers(); n != 2 {
		t.Fatalf("after closing one of two watches on db 0: %d pollers, want 2", n)
	}
	w2.Close()
	w3.Close()
	if n := h.Pollers(); n != 0 {
		t.Fatalf("after closing every watch: %d pollers, want 0", n)
	}
	h.Close()
	w := h.Watch(b1, celery.DefaultLayout("a"))
	if s := w.Latest(); !errors.Is(s.Err, poll.ErrClosed) {
		t.Errorf("watch on a closed hub: %v, want ErrClosed", s.Err)
	}
}

func TestAPinnedNowStillLetsHeartbeatsWarmUp(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	r := servers.StartRedis(t)
	h := broker.NewHub(broker.HubOptions{PollInterval: 50 * time.Millisecond, Now: func() time.Time { return t0 }, Redis: redisbroker.Options{HeartbeatWarmup: 300 * time.Millisecond}})
	defer h.Close()
	b, _ := celery.ParseBrokerURL(r.URL(0), "")
	l := celery.DefaultLayout("video")
	l.AcksLate = false
	w := h.Watch(b, l)
	defer w.Close()
	s, err := w.First(t.Context())
	if err != nil || s.Err != nil || !s.GoodAt.Equal(t0) || s.Value.HeartbeatWorkers != 0 || s.Value.InFlight != 0 {
		t.Fatalf("First = %+v, %v; want a good reading at the pinned time with no workers", s, err)
	}
}
