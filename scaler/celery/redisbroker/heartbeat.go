package redisbroker

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

	"github.com/montage/montage-scaler/scaler/celery"
)

// workerForget is how long a worker that stopped heartbeating is remembered:
// long enough that a worker restarted under the same hostname is recognised
// by its processed count starting again (even when its worker-online event
// was missed), short enough that the hostnames of replaced pods do not pile
// up.
const workerForget = time.Hour

// heartbeats follows Celery's worker events on pub/sub for every key prefix
// the broker's layouts use. A heartbeat carries the worker's running tasks
// (active: with early ack a running task has left unacked, and only this
// tells it runs) and its running total of tasks started (processed), from
// which the tasks completed since the scaler began following are counted.
type heartbeats struct {
	client *redis.Client
	now    func() time.Time
	log    *slog.Logger

	mu         sync.Mutex
	sub        *redis.PubSub
	done       chan struct{}
	subscribed map[string]time.Time           // channel → (re)subscribed at
	workers    map[string]map[string]hbWorker // heartbeat channel → hostname → latest
	// completed is, per heartbeat channel, the tasks the workers started
	// since the channel was first followed. It only grows: it is kept when
	// the channel is dropped and picked up again.
	completed map[string]int64
}

type hbWorker struct {
	active    int64
	processed int64
	freq      time.Duration
	at        time.Time // received, by our clock
	offline   bool      // it said goodbye (worker-offline)
}

func newHeartbeats(c *redis.Client, now func() time.Time, log *slog.Logger) *heartbeats {
	return &heartbeats{client: c, now: now, log: log, subscribed: map[string]time.Time{},
		workers: map[string]map[string]hbWorker{}, completed: map[string]int64{}}
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
		if _, found := slices.BinarySearch(channels, c); !found {
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
			// Tried at every poll: at debug, as the poll's own failure
			// (the same broker) is what the watch reports and logs.
			h.log.Debug("subscribe to worker heartbeats", "err", err)
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

// missing says whether some of channels is not subscribed (a subscribe
// that failed, to be tried again).
func (h *heartbeats) missing(channels []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range channels {
		if _, ok := h.subscribed[c]; !ok {
			return true
		}
	}
	return false
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
	Processed *int64  `json:"processed"`
	Freq      float64 `json:"freq"`
}

// decode reads a worker event off channel; false (logged at DEBUG) when
// it is not one this scaler understands.
func (h *heartbeats) decode(channel, payload string) (workerEvent, bool) {
	var env eventEnvelope
	if err := json.Unmarshal([]byte(payload), &env); err != nil {
		h.log.Debug("worker event not understood", "channel", channel, "err", err)
		return workerEvent{}, false
	}
	body := []byte(env.Body)
	if env.Properties.BodyEncoding == "base64" || env.BodyEncoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(env.Body)
		if err != nil {
			h.log.Debug("worker event body not base64", "channel", channel, "err", err)
			return workerEvent{}, false
		}
		body = b
	}
	var ev workerEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Hostname == "" {
		h.log.Debug("worker event body not understood", "channel", channel, "err", err)
		return workerEvent{}, false
	}
	if ev.Active < 0 || (ev.Processed != nil && *ev.Processed < 0) {
		// Not a count: the event is dropped where it enters, as one not
		// understood, and the worker keeps its last state.
		h.log.Debug("worker event with a negative count dropped", "channel", channel, "worker", ev.Hostname)
		return workerEvent{}, false
	}
	return ev, true
}

// handle records a worker event received on channel: the worker's state,
// and the tasks it completed since its last event.
func (h *heartbeats) handle(channel, payload string) {
	ev, ok := h.decode(channel, payload)
	if !ok {
		return
	}
	hbChannel := channel
	for _, kind := range []string{"offline", "online"} {
		if base, ok := strings.CutSuffix(channel, kind); ok {
			hbChannel = base + "heartbeat"
		}
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
	prev, known := ws[ev.Hostname]
	w := hbWorker{active: ev.Active, processed: prev.processed, freq: freq, at: h.now(), offline: ev.Type == "worker-offline"}
	if ev.Processed != nil {
		p := *ev.Processed
		switch {
		case !known && ev.Type != "worker-online":
			// Running before we followed it: what it did before is not
			// ours to count. (A worker that starts while we follow says
			// worker-online with processed 0, and counts from there.)
		case p >= prev.processed:
			h.completed[hbChannel] += p - prev.processed
		default:
			// Its running total went down: the worker restarted under the
			// same hostname and counts again from 0.
			h.completed[hbChannel] += p
		}
		w.processed = p
	}
	if w.offline {
		w.active = 0
	}
	ws[ev.Hostname] = w
}

// heartbeatCounts is what the heartbeats of one channel say.
type heartbeatCounts struct {
	active    int64 // Σ active of the live workers
	workers   int   // live workers: a fresh heartbeat, no goodbye
	loads     []celery.WorkerLoad
	completed int64 // tasks started since the channel was first followed
	warm      bool  // followed for the warm-up: a quiet channel means "no worker"
	source    string
}

// counts reads one channel at now. A worker is live while its latest
// heartbeat is fresh (Celery's own rule: within twice its frequency).
func (h *heartbeats) counts(prefix string, db int, now time.Time, warmup time.Duration) heartbeatCounts {
	ch := heartbeatChannels(prefix, db)[0]
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.subscribed[ch]
	c := heartbeatCounts{completed: h.completed[ch], warm: ok && now.Sub(at) >= warmup}
	for name, w := range h.workers[ch] {
		age := now.Sub(w.at)
		if age > workerForget {
			delete(h.workers[ch], name)
			continue
		}
		if w.offline || age > 2*w.freq {
			continue
		}
		c.active += w.active
		c.workers++
		c.loads = append(c.loads, celery.WorkerLoad{Hostname: name, Active: w.active})
	}
	slices.SortFunc(c.loads, func(a, b celery.WorkerLoad) int { return strings.Compare(a.Hostname, b.Hostname) })
	return c
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
