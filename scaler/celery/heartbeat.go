package celery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// heartbeats follows Celery's worker events on pub/sub while some layout on
// the broker has AcksLate false: with early ack a running task has left
// unacked, and only the heartbeat's "active" tells it runs.
type heartbeats struct {
	client *redis.Client
	now    func() time.Time
	log    *slog.Logger

	mu         sync.Mutex
	sub        *redis.PubSub
	done       chan struct{}
	subscribed map[string]time.Time           // channel → (re)subscribed at
	workers    map[string]map[string]hbWorker // heartbeat channel → hostname → latest
}

type hbWorker struct {
	active int64
	freq   time.Duration
	at     time.Time // received, by our clock
}

func newHeartbeats(c *redis.Client, now func() time.Time, log *slog.Logger) *heartbeats {
	return &heartbeats{client: c, now: now, log: log, subscribed: map[string]time.Time{}, workers: map[string]map[string]hbWorker{}}
}

// want makes the subscription cover exactly channels.
func (h *heartbeats) want(ctx context.Context, channels []string) {
	slices.Sort(channels)
	h.mu.Lock()
	defer h.mu.Unlock()
	var add, drop []string
	for _, c := range channels {
		if _, ok := h.subscribed[c]; !ok {
			add = append(add, c)
		}
	}
	for c := range h.subscribed {
		if !slices.Contains(channels, c) {
			drop = append(drop, c)
		}
	}
	if len(add) == 0 && len(drop) == 0 {
		return
	}
	if len(channels) == 0 {
		h.closeLocked()
		return
	}
	if h.sub == nil {
		h.sub = h.client.Subscribe(context.WithoutCancel(ctx))
		h.done = make(chan struct{})
		go h.receive(h.sub, h.done)
	}
	now := h.now()
	if len(add) > 0 {
		if err := h.sub.Subscribe(ctx, add...); err != nil {
			h.log.Warn("subscribe to worker heartbeats", "err", err)
			return // tried again on the next poll
		}
		for _, c := range add {
			h.subscribed[c] = now
		}
	}
	if len(drop) > 0 {
		if err := h.sub.Unsubscribe(ctx, drop...); err != nil {
			h.log.Warn("unsubscribe from worker heartbeats", "err", err)
		}
		for _, c := range drop {
			delete(h.subscribed, c)
			delete(h.workers, c)
		}
	}
}

func (h *heartbeats) receive(sub *redis.PubSub, done chan struct{}) {
	defer close(done)
	for m := range sub.ChannelWithSubscriptions() {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// Also after a reconnect: heartbeats sent meanwhile were lost.
				h.mu.Lock()
				if _, ok := h.subscribed[m.Channel]; ok {
					h.subscribed[m.Channel] = h.now()
				}
				h.mu.Unlock()
			}
		case *redis.Message:
			h.handle(m.Channel, m.Payload)
		}
	}
}

type eventEnvelope struct {
	Body         string `json:"body"`
	BodyEncoding string `json:"body_encoding"`
	Properties   struct {
		BodyEncoding string `json:"body_encoding"`
	} `json:"properties"`
}

type workerEvent struct {
	Hostname string  `json:"hostname"`
	Type     string  `json:"type"`
	Active   int64   `json:"active"`
	Freq     float64 `json:"freq"`
}

func (h *heartbeats) handle(channel, payload string) {
	var env eventEnvelope
	if err := json.Unmarshal([]byte(payload), &env); err != nil {
		h.log.Debug("worker event not understood", "channel", channel, "err", err)
		return
	}
	body := []byte(env.Body)
	if env.Properties.BodyEncoding == "base64" || env.BodyEncoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(env.Body)
		if err != nil {
			h.log.Debug("worker event body not base64", "channel", channel, "err", err)
			return
		}
		body = b
	}
	var ev workerEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Hostname == "" {
		h.log.Debug("worker event body not understood", "channel", channel, "err", err)
		return
	}
	hbChannel := channel
	if base, ok := strings.CutSuffix(channel, "offline"); ok {
		hbChannel = base + "heartbeat"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subscribed[hbChannel]; !ok {
		return
	}
	ws := h.workers[hbChannel]
	if ws == nil {
		ws = map[string]hbWorker{}
		h.workers[hbChannel] = ws
	}
	if ev.Type == "worker-offline" {
		delete(ws, ev.Hostname)
		return
	}
	freq := time.Duration(ev.Freq * float64(time.Second))
	if freq <= 0 || freq > time.Hour {
		freq = 2 * time.Second
	}
	ws[ev.Hostname] = hbWorker{active: ev.Active, freq: freq, at: h.now()}
}

// sum is Σ active of the workers whose latest heartbeat is fresh (Celery's
// own rule: within twice its frequency). warm is false until the channel has
// been subscribed for warmup, when a quiet channel still means "no worker".
func (h *heartbeats) sum(prefix string, db int, now time.Time, warmup time.Duration) (active int64, workers int, warm bool) {
	ch := heartbeatChannels(prefix, db)[0]
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.subscribed[ch]
	if !ok || now.Sub(at) < warmup {
		return 0, 0, false
	}
	for name, w := range h.workers[ch] {
		if now.Sub(w.at) > 2*w.freq {
			delete(h.workers[ch], name)
			continue
		}
		active += w.active
		workers++
	}
	return active, workers, true
}

func (h *heartbeats) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeLocked()
}

func (h *heartbeats) closeLocked() {
	if h.sub != nil {
		_ = h.sub.Close()
		done := h.done
		h.sub, h.done = nil, nil
		h.mu.Unlock()
		<-done
		h.mu.Lock()
	}
	h.subscribed = map[string]time.Time{}
	h.workers = map[string]map[string]hbWorker{}
}
