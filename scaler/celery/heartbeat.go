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

// heartbeats follows Celery's worker events on pub/sub for every key prefix
// watched on the broker. With early ack a running task has left unacked, and
// only the heartbeat's "active" tells it runs; with any ack mode the
// heartbeat's "processed" (the worker's running total of tasks done) tells
// how many tasks the workers completed.
type heartbeats struct {
	client *redis.Client
	now    func() time.Time
	log    *slog.Logger

	mu         sync.Mutex
	sub        *redis.PubSub
	done       chan struct{}
	subscribed map[string]time.Time           // channel → (re)subscribed at
	workers    map[string]map[string]hbWorker // heartbeat channel → hostname → latest
	totals     map[string]map[string]hbTotal  // heartbeat channel → hostname → processed as last heard
	completed  map[string]int64               // heartbeat channel → tasks completed since subscribed
}

// hbTotal is a worker's running total as last heard, kept while it is
// offline too, so that a worker restarting under the same hostname is seen
// to start again from 0.
type hbTotal struct {
	pid, processed int64
	at             time.Time
}

// forgetTotalsAfter bounds the totals kept for workers no longer heard (pod
// names change with every pod).
const forgetTotalsAfter = 24 * time.Hour

type hbWorker struct {
	active int64
	freq   time.Duration
	at     time.Time // received, by our clock
}

func newHeartbeats(c *redis.Client, now func() time.Time, log *slog.Logger) *heartbeats {
	return &heartbeats{client: c, now: now, log: log, subscribed: map[string]time.Time{}, workers: map[string]map[string]hbWorker{},
		totals: map[string]map[string]hbTotal{}, completed: map[string]int64{}}
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
			delete(h.totals, c)
			delete(h.completed, c)
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
	Hostname  string  `json:"hostname"`
	Type      string  `json:"type"`
	Active    int64   `json:"active"`
	Freq      float64 `json:"freq"`
	Processed int64   `json:"processed"`
	Pid       int64   `json:"pid"`
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
	freq := time.Duration(ev.Freq * float64(time.Second))
	if freq <= 0 || freq > time.Hour {
		freq = 2 * time.Second
	}
	now := h.now()
	h.count(hbChannel, ev, freq, now)
	if ev.Type == "worker-offline" {
		delete(ws, ev.Hostname)
		return
	}
	ws[ev.Hostname] = hbWorker{active: ev.Active, freq: freq, at: now}
}

// count adds to the channel's completed tasks what the worker's running
// total says it did since it was last heard. A worker restarted under the
// same hostname (another pid, or a total that went down) starts again from
// 0, so its whole total is new. A worker heard for the first time counts
// from 0 too when the channel has been followed for longer than two of its
// heartbeat periods (it started since); otherwise its total predates the
// scaler and is only the baseline.
func (h *heartbeats) count(channel string, ev workerEvent, freq time.Duration, now time.Time) {
	ts := h.totals[channel]
	if ts == nil {
		ts = map[string]hbTotal{}
		h.totals[channel] = ts
	}
	prev, seen := ts[ev.Hostname]
	var done int64
	switch {
	case !seen:
		if now.Sub(h.subscribed[channel]) > 2*freq {
			done = ev.Processed
		}
		for host, t := range ts {
			if now.Sub(t.at) > forgetTotalsAfter {
				delete(ts, host)
			}
		}
	case (ev.Pid != 0 && prev.pid != 0 && ev.Pid != prev.pid) || ev.Processed < prev.processed:
		done = ev.Processed
	default:
		done = ev.Processed - prev.processed
	}
	if done > 0 {
		h.completed[channel] += done
	}
	ts[ev.Hostname] = hbTotal{pid: ev.Pid, processed: ev.Processed, at: now}
}

// sum is Σ active of the workers whose latest heartbeat is fresh (Celery's
// own rule: within twice its frequency). warm is false until the channel has
// been subscribed for warmup, when a quiet channel still means "no worker".
// completed is the tasks the workers completed since the channel was first
// followed (monotonic while it is).
func (h *heartbeats) sum(prefix string, db int, now time.Time, warmup time.Duration) (active int64, workers int, completed int64, warm bool) {
	ch := heartbeatChannels(prefix, db)[0]
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.subscribed[ch]
	completed = h.completed[ch]
	if !ok || now.Sub(at) < warmup {
		return 0, 0, completed, false
	}
	for name, w := range h.workers[ch] {
		if now.Sub(w.at) > 2*w.freq {
			delete(h.workers[ch], name)
			continue
		}
		active += w.active
		workers++
	}
	return active, workers, completed, true
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
	h.totals = map[string]map[string]hbTotal{}
	h.completed = map[string]int64{}
}
