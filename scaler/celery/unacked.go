package celery

import (
	"encoding/json"
	"log/slog"
	"time"
)

// Backlog is one ScaledObject's view of the broker.
type Backlog struct {
	// Queued is what waits for a worker: ready in the lists (all priority
	// sub-queues), unacked entries older than the visibility timeout (their
	// worker is presumed dead; kombu will restore them) and ETA/countdown
	// tasks whose ETA has come.
	Queued int64 `json:"queued"`
	// InFlight is the unacked entries of these queues (+ Σ active of fresh
	// worker heartbeats when AcksLate is false).
	InFlight int64 `json:"inFlight"`
	// ETAWaiting is ETA/countdown tasks held by workers whose ETA is still
	// ahead; shown apart, counted in neither Queued nor InFlight.
	ETAWaiting int64 `json:"etaWaiting"`
	// Stale is the part of Queued that comes from entries older than the
	// visibility timeout.
	Stale int64 `json:"stale"`
	// Queues is the per-queue breakdown, sorted by name.
	Queues []QueueBacklog `json:"queues"`

	// HeartbeatActive is Σ active of the live workers (added to InFlight
	// only with AcksLate false), and HeartbeatWorkers how many workers are
	// live: their latest heartbeat on this db and key prefix is fresh
	// (within twice its frequency, Celery's own rule) and they have not
	// said worker-offline. Both are 0 for the first seconds of following.
	HeartbeatActive  int64 `json:"heartbeatActive"`
	HeartbeatWorkers int   `json:"heartbeatWorkers"`
	// Completed counts the tasks completed by the workers heartbeating on
	// this broker db and key prefix since the scaler began following their
	// heartbeats. It is the sum of the increases of each worker's processed
	// (a worker restarted under the same hostname starts again from 0 and
	// counts from there; one already running when the following began
	// counts from its first heartbeat). Celery increments processed when
	// the pool accepts a task, so a task counts from its start. Like
	// acksLate false's active sum, it assumes the scaled Deployment's
	// workers are the ones heartbeating there. It never decreases for one
	// CompletedSource.
	Completed int64 `json:"completed"`
	// CompletedSource names the counter behind Completed (the poller and
	// the key prefix): Backlogs with the same source count the same tasks.
	CompletedSource string `json:"-"`

	// UnackedTotal is HLEN of the unacked hash (every queue of the db).
	UnackedTotal int64 `json:"unackedTotal"`
	// UnackedSampled is how many entries the attribution was read from.
	UnackedSampled int64 `json:"unackedSampled"`
	// UnackedScaled says the attribution was scaled from UnackedSampled to
	// UnackedTotal (the hash changed since its last pass, or the pass is
	// partial).
	UnackedScaled bool `json:"unackedScaled"`
	// UnackedPartial says no pass over the hash has finished yet: the
	// attribution is from the part scanned so far.
	UnackedPartial bool `json:"unackedPartial"`
	// UnackedUnattributed is how many unacked entries could not be given to
	// any queue (no sample yet); a new pass is then started at once.
	UnackedUnattributed int64 `json:"unackedUnattributed"`
	// AttributedAt is when the latest complete pass over the hash finished.
	AttributedAt time.Time `json:"attributedAt"`
	// BrokerTime is the broker's clock (TIME) at the poll: every age here
	// (queue waits, ETAs, the visibility timeout) is judged at it, so
	// scaler replicas whose clocks differ read the same ages.
	BrokerTime time.Time `json:"brokerTime"`

	// OldestWaitSeconds is the longest of the queues' oldest waits, and
	// WaitMethod what gave it; null when no queue's could be read.
	OldestWaitSeconds *float64 `json:"oldestWaitSeconds"`
	WaitMethod        string   `json:"waitMethod"`
	// WaitError says what went wrong reading the queue waits: a queue whose
	// wait is null, or first sightings kept by this replica only.
	WaitError string `json:"waitError,omitempty"`
	// QueueWaitTargetSeconds is queueWaitTarget (null: the wait is shown,
	// not acted on), and WaitAsk what the wait rule asked for when some
	// task had waited longer (null otherwise); set by Config.Opinion.
	QueueWaitTargetSeconds *float64 `json:"queueWaitTargetSeconds"`
	WaitAsk                *float64 `json:"waitAsk"`
}

// QueueBacklog is one queue's part of a Backlog.
type QueueBacklog struct {
	Name       string `json:"name"`
	Ready      int64  `json:"ready"`      // LLEN over all priority lists
	Unacked    int64  `json:"unacked"`    // in flight
	Stale      int64  `json:"stale"`      // older than the visibility timeout
	ETADue     int64  `json:"etaDue"`     // held with an ETA that has come
	ETAWaiting int64  `json:"etaWaiting"` // held with an ETA still ahead
	// OldestWaitSeconds is how long the oldest waiting task of the queue
	// has waited: the longest among the heads of its lists (priority
	// sub-queues included), an ETA task counting from its ETA and not at
	// all before it; 0 when nothing waits; null when it could not be read.
	OldestWaitSeconds *float64 `json:"oldestWaitSeconds"`
	// WaitMethod says what gave that age: WaitStamp, WaitFirstSeen or
	// WaitFirstSeenLocal; empty when nothing waits.
	WaitMethod string `json:"waitMethod"`
}

// scanned is one entry returned by an HSCAN step.
type scanned struct {
	tag   string
	queue string
	eta   time.Time
}

// entry is one unacked message as attributed.
type entry struct {
	queue     string
	delivered float64 // unix seconds, kombu's unacked_index score
	eta       time.Time
}

// attribution tracks the unacked hash of one key prefix: the latest
// complete pass and the pass under way, one HSCAN step per poll.
type attribution struct {
	done      []entry
	doneValid bool
	doneAt    time.Time

	cur           []entry        // pass under way
	curIdx        map[string]int // tag → index in cur (HSCAN may repeat)
	running       bool
	startedAt     time.Time
	cursor        uint64
	pendingCursor uint64

	lastHLen int64
}

// stepDue says whether this poll should take an HSCAN step, starting a pass
// when the last one is older than interval (or told nothing while the hash
// is not empty).
func (a *attribution) stepDue(now time.Time, interval time.Duration) bool {
	if a.running {
		return true
	}
	if a.doneValid && now.Sub(a.startedAt) < interval && (len(a.done) > 0 || a.lastHLen == 0) {
		return false
	}
	a.running, a.startedAt, a.cursor, a.cur, a.curIdx = true, now, 0, nil, map[string]int{}
	return true
}

// addStep records an HSCAN step; scores are the entries' delivery times
// (0: the entry was acked between the two reads).
func (a *attribution) addStep(step []scanned, scores []float64, now time.Time) {
	for i, s := range step {
		if i >= len(scores) || scores[i] <= 0 {
			continue
		}
		e := entry{queue: s.queue, delivered: scores[i], eta: s.eta}
		if j, ok := a.curIdx[s.tag]; ok {
			a.cur[j] = e
			continue
		}
		a.curIdx[s.tag] = len(a.cur)
		a.cur = append(a.cur, e)
	}
	a.cursor = a.pendingCursor
	if a.cursor == 0 {
		a.done = a.cur
		a.doneValid, a.doneAt, a.running, a.cur, a.curIdx = true, now, false, nil, nil
	}
}

// source is what to attribute from: the latest complete pass, or the pass
// under way when none finished or the finished one was empty.
func (a *attribution) source() (entries []entry, partial bool) {
	if a.doneValid && (len(a.done) > 0 || len(a.cur) == 0) {
		return a.done, false
	}
	if len(a.cur) > 0 {
		return a.cur, true
	}
	return nil, false
}

type queueCounts struct {
	unacked, stale, etaDue, etaWaiting int64
}

// count splits the attributed entries by queue and state at now.
func (a *attribution) count(now time.Time, vt time.Duration) map[string]*queueCounts {
	entries, _ := a.source()
	out := map[string]*queueCounts{}
	cutoff := float64(now.Add(-vt).UnixNano()) / 1e9
	for _, e := range entries {
		if e.queue == "" {
			continue
		}
		c := out[e.queue]
		if c == nil {
			c = &queueCounts{}
			out[e.queue] = c
		}
		switch {
		case !e.eta.IsZero() && e.eta.After(now):
			c.etaWaiting++
		case e.delivered < cutoff:
			c.stale++
		case !e.eta.IsZero():
			c.etaDue++
		default:
			c.unacked++
		}
	}
	return out
}

// parseScan reads HSCAN's flat [tag, value, ...] reply. A value is kombu's
// JSON [message, exchange, routing_key]; with the default exchange the
// routing key is the queue name.
func parseScan(kv []string, log *slog.Logger) []scanned {
	out := make([]scanned, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		s := scanned{tag: kv[i]}
		q, eta, err := parseUnacked([]byte(kv[i+1]))
		if err != nil {
			log.Debug("unacked entry not understood", "tag", kv[i], "err", err)
		}
		s.queue, s.eta = q, eta
		out = append(out, s)
	}
	return out
}

type unackedMessage struct {
	Headers struct {
		ETA *string `json:"eta"`
	} `json:"headers"`
}

func parseUnacked(v []byte) (queue string, eta time.Time, err error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(v, &parts); err != nil {
		return "", time.Time{}, err
	}
	if len(parts) != 3 {
		return "", time.Time{}, errBadEntry
	}
	var msg unackedMessage
	if err := json.Unmarshal(parts[0], &msg); err != nil {
		return "", time.Time{}, err
	}
	if err := json.Unmarshal(parts[2], &queue); err != nil {
		return "", time.Time{}, err
	}
	if msg.Headers.ETA != nil && *msg.Headers.ETA != "" {
		eta, err = parseETA(*msg.Headers.ETA)
		if err != nil {
			return queue, time.Time{}, err
		}
	}
	return queue, eta, nil
}

type entryError string

func (e entryError) Error() string { return string(e) }

const errBadEntry = entryError("unacked entry is not [message, exchange, routing_key]")

// parseETA reads Celery's ISO 8601 eta header; a naive time is UTC.
func parseETA(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
}
