package celery

import (
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/poll"
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
	// Workers are the live workers one by one, sorted by hostname: what the
	// pod-cost writer maps to pods (a worker's hostname is celery@<pod>).
	Workers []WorkerLoad `json:"workers,omitempty"`
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
	// Flow is how the ask came about with a queueWaitTarget: the rule that
	// set it (the wait-based ask, or the depth ask it fell back to and
	// why), the measured arrivals, service time and pod start-up, and the
	// drain time; nil without a target. Set by Config.Opinion.
	Flow *decide.CeleryFlowDetail `json:"flow,omitempty"`
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

// StampHeader is the message header a Celery app sets in its
// before_task_publish signal to the publish time, in Unix seconds
// (time.time()): the age of the oldest waiting task is then exact.
// examples/celery/publish_stamp.py is the snippet.
const StampHeader = "montage_published_at"

// Where the age of a waiting task comes from (QueueBacklog.WaitMethod).
const (
	// WaitStamp is the message's StampHeader.
	WaitStamp = "publish-stamp"
	// WaitFirstSeen is when a scaler first saw the message at the head of
	// its list, kept in the broker: every scaler replica reads the same
	// time, and a restart keeps it.
	WaitFirstSeen = "first-seen"
	// WaitFirstSeenLocal is when this scaler replica first saw the message
	// at the head of its list, kept in its memory: shown, never acted on
	// (another replica, or this one after a restart, would say another
	// age).
	WaitFirstSeenLocal = "first-seen-local"
)

// Kinds of montage_scaler_celery_wait_warnings_total: what a queue wait's
// note says, counted once per message it concerns.
const (
	// WarnFirstSeenLost: a first-seen key vanished (or came back later)
	// while its message stayed at the head of its list.
	WarnFirstSeenLost = "first_seen_lost"
	// WarnStampAhead: a publish stamp is ahead of the broker's clock.
	WarnStampAhead = "stamp_ahead"
)

// ErrWarmingUp is a layout's error while it waits for the first worker
// heartbeats (Layout.AcksLate false): not read yet, rather than failed.
var ErrWarmingUp = poll.NotReadYet("celery: waiting for worker heartbeats")

// ActionableWait is the longest wait every scaler replica reads the same
// (WaitStamp or WaitFirstSeen), over the queues; 0 when none.
func (bl Backlog) ActionableWait() time.Duration {
	var out float64
	for _, q := range bl.Queues {
		if q.OldestWaitSeconds != nil && (q.WaitMethod == WaitStamp || q.WaitMethod == WaitFirstSeen) {
			out = max(out, *q.OldestWaitSeconds)
		}
	}
	return time.Duration(out * float64(time.Second))
}

// WorkerLoad is one live worker's latest heartbeat: its hostname
// (celery@<pod> by default) and the tasks it runs (active).
type WorkerLoad struct {
	Hostname string `json:"hostname"`
	Active   int64  `json:"active"`
}
