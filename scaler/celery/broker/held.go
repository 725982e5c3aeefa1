package broker

import (
	"context"
	"errors"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
)

// brokerPoll is one broker's poll as the Hub runs it: its Conn, and each
// layout's last good Backlog, for a poll that fails for some layouts only.
type brokerPoll struct {
	conn    Conn
	now     func() time.Time
	layouts func() map[string]celery.Layout // the layouts of the broker's current watches, by ID

	// Owned by the poll goroutine.
	held map[string]heldBacklog
}

// heldBacklog is a layout's last good Backlog and when it was read.
type heldBacklog struct {
	bl celery.Backlog
	at time.Time
}

// poll reads the broker once. A layout that failed alone keeps its last
// good Backlog, with its error and the time it was read (see poll.Parts);
// one that waits for worker heartbeats has no reading yet.
func (p *brokerPoll) poll(ctx context.Context) (Reading, error) {
	layouts := p.layouts()
	r, err := p.conn.Poll(ctx, layouts)
	if len(layouts) > 0 {
		for id := range p.held {
			if _, ok := layouts[id]; !ok {
				delete(p.held, id) // no watch reads it any more
			}
		}
	}
	if err != nil {
		return Reading{}, err
	}
	readAt := p.now()
	for id, bl := range r.Of {
		p.held[id] = heldBacklog{bl: bl, at: readAt}
	}
	for id, err := range r.Errs {
		if h, ok := p.held[id]; ok && !errors.Is(err, celery.ErrWarmingUp) {
			r.Of[id], r.At[id] = h.bl, h.at
		}
	}
	return r, nil
}
