package redisbroker

import (
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
)

func TestWaitOfAHead(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name   string
		h      head
		local  time.Time
		want   listWait
		wantOK bool
	}{
		{"a stamp gives the age", head{stamp: ago(90 * time.Second), seen: ago(10 * time.Second)}, ago(5 * time.Second),
			listWait{wait: 90 * time.Second, method: celery.WaitStamp, waiting: true}, true},
		{"without a stamp the broker's first sighting, the older", head{seen: ago(40 * time.Second)}, ago(5 * time.Second),
			listWait{wait: 40 * time.Second, method: celery.WaitFirstSeen, waiting: true}, true},
		{"without either, this replica's", head{}, ago(5 * time.Second),
			listWait{wait: 5 * time.Second, method: celery.WaitFirstSeenLocal, waiting: true}, true},
		{"an ETA ahead does not wait yet", head{stamp: ago(time.Hour), eta: now.Add(time.Second)}, time.Time{},
			listWait{}, true},
		{"an ETA task that is due waits from its ETA", head{stamp: ago(time.Hour), eta: ago(30 * time.Second)}, time.Time{},
			listWait{wait: 30 * time.Second, method: celery.WaitStamp, waiting: true}, true},
		{"a stamp in the future (the producer's clock ahead) is no wait, and said", head{stamp: now.Add(2 * time.Second)}, time.Time{},
			listWait{method: celery.WaitStamp, waiting: true, stampAhead: 2 * time.Second}, true},
		{"a stamp ahead by less than the tolerance is no wait, unsaid", head{stamp: now.Add(time.Second)}, time.Time{},
			listWait{method: celery.WaitStamp, waiting: true}, true},
		{"a broker sighting later than this replica's (its key was lost) yields to the older", head{seen: ago(3 * time.Second)}, ago(12 * time.Second),
			listWait{wait: 12 * time.Second, method: celery.WaitFirstSeenLocal, waiting: true}, true},
		{"a broker sighting as old as this replica's acts", head{seen: ago(12 * time.Second)}, ago(12 * time.Second),
			listWait{wait: 12 * time.Second, method: celery.WaitFirstSeen, waiting: true}, true},
		{"a first sighting that could not be kept says so", head{storeErr: "NOPERM"}, ago(3 * time.Second),
			listWait{wait: 3 * time.Second, method: celery.WaitFirstSeenLocal, waiting: true, note: "the first sighting could not be kept in the broker: NOPERM"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := waitOf(tt.h, tt.local, now); got != tt.want {
				t.Errorf("waitOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAQueuesWaitIsItsLongestListsAndOnlySharedAgesAct(t *testing.T) {
	l := celery.DefaultLayout("video", "thumbs")
	v, v3, v9 := l.Lists("video")[0], l.Lists("video")[1], l.Lists("video")[3]
	waits := map[string]listWait{
		v:                    {wait: 10 * time.Second, method: celery.WaitStamp, waiting: true},
		v9:                   {wait: 70 * time.Second, method: celery.WaitStamp, waiting: true},
		v3:                   {waiting: false},
		l.Lists("thumbs")[0]: {wait: 300 * time.Second, method: celery.WaitFirstSeenLocal, waiting: true},
	}
	a := &attribution{}
	bl := a.backlog(l, nil, nil, waits, nil)
	if bl.Queues[1].Name != "video" || *bl.Queues[1].OldestWaitSeconds != 70 || bl.Queues[1].WaitMethod != celery.WaitStamp {
		t.Errorf("video: %+v, want 70 s by stamp (its priority 9 list)", bl.Queues[1])
	}
	if *bl.OldestWaitSeconds != 300 || bl.WaitMethod != celery.WaitFirstSeenLocal {
		t.Errorf("backlog oldest %v by %q, want 300 s first-seen-local (shown)", *bl.OldestWaitSeconds, bl.WaitMethod)
	}
	if got := bl.ActionableWait(); got != 70*time.Second {
		t.Errorf("ActionableWait = %s, want 70s: this replica's own sightings never act", got)
	}

	// A list that could not be read leaves its queue's wait unknown.
	bl = a.backlog(l, nil, nil, waits, map[string]error{v3: errNoScriptForTest})
	if bl.Queues[1].OldestWaitSeconds != nil || bl.WaitError != `queue "video": NOSCRIPT no matching script` {
		t.Errorf("video %+v, error %q: want no wait and the error", bl.Queues[1], bl.WaitError)
	}
	if nothing := a.backlog(celery.DefaultLayout("idle"), nil, nil, nil, nil); *nothing.Queues[0].OldestWaitSeconds != 0 || nothing.WaitMethod != "" {
		t.Errorf("an empty queue: %+v, want 0 s and no method", nothing.Queues[0])
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errNoScriptForTest = testErr("NOSCRIPT no matching script")
