package broker

import (
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/poll"
)

// flowView is a watch's view that feeds every good reading to the watch's
// celery.Flow as the poll makes it, not only when KEDA asks: the flow's
// rates and the start-up it learns need the polls' resolution (a new
// worker's first heartbeat), not the RPCs' (every 15–30 s).
type flowView struct {
	*poll.View[celery.Backlog]
	flow *celery.Flow
	stop chan struct{}
	done chan struct{}
}

func newFlowView(v *poll.View[celery.Backlog], f *celery.Flow, now func() time.Time) *flowView {
	fv := &flowView{View: v, flow: f, stop: make(chan struct{}), done: make(chan struct{})}
	go fv.feed(now)
	return fv
}

func (fv *flowView) feed(now func() time.Time) {
	defer close(fv.done)
	var last time.Time
	for {
		ch := fv.Changed()
		if s := fv.Latest(); !s.GoodAt.IsZero() && s.GoodAt != last {
			last = s.GoodAt
			fv.flow.Observe(s.Value, now())
		}
		if ch == nil {
			return // closed
		}
		select {
		case <-ch:
		case <-fv.stop:
			return
		}
	}
}

// Close stops the feed, then releases the view.
func (fv *flowView) Close() {
	select {
	case <-fv.stop:
	default:
		close(fv.stop)
	}
	<-fv.done
	fv.View.Close()
}
