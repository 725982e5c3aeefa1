package redisbroker

import (
	"encoding/json"
	"log/slog"
	"time"
)

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
