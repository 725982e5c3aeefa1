package forecast

import (
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Opinion is one ScaledObject's forecast component over its shared
// history. Last week's error compares 2016 buckets with their estimates, so
// the evidence is cached per history copy and pair of slots (now, and now +
// lead time).
type Opinion struct {
	c *Config

	mu   sync.Mutex
	hist *History
	now  time.Time // bucket of now the cache is for
	slot time.Time // bucket of now + lead time
	ev   decide.ForecastEvidence
}

// NewOpinion returns the forecast component of c.
func NewOpinion(c *Config) *Opinion { return &Opinion{c: c} }

// Of asks for the usual demand of the slot lead time ahead in history h
// (see decide.ForecastOpinion for when it stays silent).
func (o *Opinion) Of(h *History, now time.Time) (decide.Opinion, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	nb, sb := BucketOf(now), BucketOf(now.Add(o.c.LeadTime))
	if o.hist != h || !o.now.Equal(nb) || !o.slot.Equal(sb) {
		o.ev = Evaluate(h, now, o.c.Mode, o.c.Params())
		o.hist, o.now, o.slot = h, nb, sb
	}
	ev := o.ev
	ev.Target = now.Add(o.c.LeadTime).UTC()
	return decide.ForecastOpinion(ev), nil
}
