package forecast

import (
	"time"
)

// What a bucket's fields record, by name (the Demand's keys, and the
// component part of the stored field "<unix>:<kind>").
const (
	// KindDemand is the celery component's demand (EstimateDemand): the
	// replicas that would have served the bucket's arrivals as they came.
	KindDemand = "celery-demand"
	// KindLatency is the latency component's largest ask, as asked.
	KindLatency = "latency"
	// KindLegacyAsk is what the history held for celery before KindDemand:
	// the component's largest ask, backlog included. It is read, never
	// written, and a bucket that has KindDemand ignores it.
	KindLegacyAsk = "celery"
)

// Sample is what the forecast's recorder reads from the reactive components
// at one instant.
type Sample struct {
	// Tasks are the broker's counts; nil without a fresh celery reading.
	Tasks *TaskSample
	// TasksPerReplica is the celery component's divisor.
	TasksPerReplica float64
	// Asks are the other reactive components' asks in replicas, recorded as
	// asked (KindLatency); a fresh reading without an opinion is a 0.
	Asks Demand
}

// maxSamples bounds one bucket's task samples: past it every other one is
// dropped (the first and the span are kept), so a short sample interval
// costs no more memory than this.
const maxSamples = 1024

// Bucketer gathers the open bucket's samples and closes it into the
// bucket's Demand when a sample falls into a later bucket. The server's
// recorder and the simulator both record through one. Not safe for
// concurrent use.
type Bucketer struct {
	bucket time.Time
	tasks  []TaskSample
	tpr    float64
	asks   Demand
	// Last is the estimate of the latest bucket closed with task samples.
	Last DemandEstimate
}

// Add adds s, taken at now, to its bucket. When now is in a later bucket
// than the open one, the open one is closed first and returned (ok true,
// unless it had nothing to record).
func (b *Bucketer) Add(now time.Time, s Sample) (bucket time.Time, d Demand, ok bool) {
	if nb := BucketOf(now); !nb.Equal(b.bucket) {
		bucket, d, ok = b.Close()
		b.bucket = nb
	}
	if s.Tasks != nil {
		if len(b.tasks) == maxSamples {
			kept := b.tasks[:0]
			for i := 0; i < len(b.tasks); i += 2 {
				kept = append(kept, b.tasks[i])
			}
			b.tasks = kept
		}
		t := *s.Tasks
		t.At = now
		b.tasks = append(b.tasks, t)
		b.tpr = s.TasksPerReplica
	}
	if len(s.Asks) > 0 {
		if b.asks == nil {
			b.asks = Demand{}
		}
		b.asks.merge(s.Asks)
	}
	return bucket, d, ok
}

// Close returns the open bucket's Demand (ok false when it recorded
// nothing) and empties it.
func (b *Bucketer) Close() (bucket time.Time, d Demand, ok bool) {
	bucket, d = b.bucket, Demand{}
	for k, v := range b.asks {
		d[k] = v
	}
	if e, ok := EstimateDemand(b.tasks, b.tpr); ok {
		d[KindDemand] = e.Replicas
		b.Last = e
	}
	b.tasks, b.asks = b.tasks[:0], nil
	return bucket, d, len(d) > 0
}
