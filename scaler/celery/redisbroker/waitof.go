package redisbroker

import (
	"fmt"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
)

// listWait is how long the head of one list has waited at now.
type listWait struct {
	wait    time.Duration
	method  string
	waiting bool   // some task waits (a head whose ETA, if any, has come)
	note    string // why a first sighting is this replica's only
	// lost says the head's first-seen key was lost from the broker (and
	// written back from the older sighting when it could be).
	lost bool
	// stampAhead is how far the head's publish stamp is ahead of the
	// broker's clock, beyond stampAheadTolerance (0: not).
	stampAhead time.Duration
}

// waitOf judges the head of a list at now, the broker's time. local is the
// oldest sighting this replica knows of an unstamped head (its own or one
// the broker held); the broker's sighting acts when it is that oldest, as
// every replica then reads it.
func waitOf(h head, local time.Time, now time.Time) listWait {
	if !h.eta.IsZero() && h.eta.After(now) {
		return listWait{} // not due: it does not wait yet
	}
	w := listWait{waiting: true}
	if h.storeErr != "" {
		w.note = "the first sighting could not be kept in the broker: " + h.storeErr
	}
	from := h.stamp
	switch {
	case !h.stamp.IsZero():
		w.method = celery.WaitStamp
		if ahead := h.stamp.Sub(now); ahead > stampAheadTolerance {
			w.stampAhead = ahead
		}
	case !h.seen.IsZero() && (local.IsZero() || !local.Before(h.seen)):
		from, w.method = h.seen, celery.WaitFirstSeen
	default:
		from, w.method = local, celery.WaitFirstSeenLocal
	}
	if !h.eta.IsZero() && h.eta.After(from) {
		from = h.eta // an ETA task waits from its ETA on
	}
	w.wait = max(now.Sub(from), 0)
	return w
}

// waitFrom sets queue qb's oldest wait from the waits of its lists (the
// longest), or leaves it unknown when a list could not be read; problems
// go to the Backlog's WaitError, and its oldest wait is the queues'.
func waitFrom(qb *celery.QueueBacklog, lists []string, waits map[string]listWait, errs map[string]error, bl *celery.Backlog) {
	var best listWait
	for _, l := range lists {
		if err := errs[l]; err != nil {
			addWaitError(bl, fmt.Sprintf("queue %q: %v", qb.Name, err))
			return
		}
		w := waits[l]
		if w.note != "" {
			addWaitError(bl, fmt.Sprintf("queue %q: %s", qb.Name, w.note))
		}
		if w.lost {
			addWaitError(bl, fmt.Sprintf("queue %q: its first-seen key was lost from the broker (evicted under a volatile-* "+
				"maxmemory-policy, or deleted); the older sighting is kept: set the broker's maxmemory-policy to noeviction", qb.Name))
		}
		if w.stampAhead > 0 {
			addWaitError(bl, fmt.Sprintf("queue %q: the publish stamp of its oldest task is %s ahead of the broker's clock "+
				"(the producer's clock runs ahead): its wait reads 0 until the broker's clock passes it", qb.Name, w.stampAhead.Round(time.Second)))
		}
		if w.waiting && (!best.waiting || w.wait > best.wait) {
			best = w
		}
	}
	sec := best.wait.Seconds()
	qb.OldestWaitSeconds, qb.WaitMethod = &sec, best.method
	if bl.OldestWaitSeconds == nil || sec > *bl.OldestWaitSeconds {
		bl.OldestWaitSeconds, bl.WaitMethod = &sec, best.method
	}
}

// addWaitError adds msg to bl's WaitError, once.
func addWaitError(bl *celery.Backlog, msg string) {
	if !strings.Contains(bl.WaitError, msg) {
		bl.WaitError = strings.TrimPrefix(bl.WaitError+"; "+msg, "; ")
	}
}
