package scaler

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
)

// Hubs are the shared pollers, one per upstream, that watches draw from.
// A nil hub means that component cannot be used (its metadata is refused).
type Hubs struct {
	Celery   *celery.Hub
	Latency  *latency.Hub
	Calendar *calendar.Hub
	// Forecast may be nil: forecast keys are then ignored.
	Forecast *forecast.Hub
}

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	Hubs  Hubs
	Parse ParseOptions
	Now   func() time.Time
	// IdleAfter drops a watch nobody asked about for this long (10m).
	IdleAfter time.Duration
	// FirstWait bounds how long the first answer of a new watch waits for
	// its sources (the rest never wait).
	FirstWait time.Duration
	Logger    *slog.Logger
	// OnDrop is called with each dropped watch (to forget its metrics).
	OnDrop func(namespace, name string)
}

type watchKey struct {
	namespace, name, metadata string
}

// watch is one ScaledObject's view: its spec and its sources.
type watch struct {
	key      watchKey
	spec     *Spec
	sources  []source
	logger   *slog.Logger
	lastUsed atomic.Int64 // unix nanoseconds
	streams  atomic.Int32
	ready    chan struct{} // closed once every source had its first attempt (or FirstWait passed)
}

// Registry keeps one watch per (namespace, name, metadata) and drops those
// nobody asked about for IdleAfter, with their goroutines and connections.
type Registry struct {
	o RegistryOptions

	mu      sync.Mutex
	watches map[watchKey]*watch
	specs   map[string]*parsedSpec
}

type parsedSpec struct {
	spec     *Spec
	err      error
	lastUsed time.Time
}

// NewRegistry returns an empty Registry; run its janitor with Run.
func NewRegistry(o RegistryOptions) *Registry {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IdleAfter <= 0 {
		o.IdleAfter = 10 * time.Minute
	}
	if o.FirstWait <= 0 {
		o.FirstWait = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{o: o, watches: map[watchKey]*watch{}, specs: map[string]*parsedSpec{}}
}

// Spec parses metadata once per distinct map and returns the cached result.
func (r *Registry) Spec(md map[string]string) (*Spec, error) {
	k := metadataKey(md)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.specLocked(k, md)
}

func (r *Registry) specLocked(k string, md map[string]string) (*Spec, error) {
	p, ok := r.specs[k]
	if !ok {
		s, err := ParseSpec(md, r.o.Parse)
		p = &parsedSpec{spec: s, err: err}
		r.specs[k] = p
	}
	p.lastUsed = r.o.Now()
	return p.spec, p.err
}

// Get returns the watch for a ScaledObject, creating it on first use. A new
// watch's first answer waits (at most FirstWait, and never past ctx) for its
// sources; later calls never wait.
func (r *Registry) Get(ctx context.Context, namespace, name string, md map[string]string) (*watch, error) {
	key := watchKey{namespace: namespace, name: name, metadata: metadataKey(md)}
	r.mu.Lock()
	w, ok := r.watches[key]
	if !ok {
		spec, err := r.specLocked(key.metadata, md)
		if err != nil {
			r.mu.Unlock()
			return nil, err
		}
		w = r.newWatch(key, spec)
		r.watches[key] = w
		for _, warning := range spec.Warnings {
			w.logger.Warn(warning)
		}
		w.logger.Info("watch started")
	}
	w.lastUsed.Store(r.o.Now().UnixNano())
	r.mu.Unlock()

	select {
	case <-w.ready:
	case <-ctx.Done():
	}
	return w, nil
}

func (r *Registry) newWatch(key watchKey, spec *Spec) *watch {
	w := &watch{
		key:    key,
		spec:   spec,
		logger: r.o.Logger.With("scaledObject", key.namespace+"/"+key.name),
		ready:  make(chan struct{}),
	}
	if c := spec.Celery; c != nil {
		w.sources = append(w.sources, celerySource{w: r.o.Hubs.Celery.Watch(c.Broker, c.Layout), perReplica: c.TasksPerReplica})
	}
	if c := spec.Latency; c != nil {
		w.sources = append(w.sources, latencySource{w: r.o.Hubs.Latency.Watch(key.namespace, key.name, c)})
	}
	if c := spec.Calendar; c != nil {
		w.sources = append(w.sources, &calendarSource{w: r.o.Hubs.Calendar.Watch(c), c: c})
	}
	if c := spec.Forecast; c != nil && r.o.Hubs.Forecast != nil {
		demand := reactiveDemand(slices.Clone(w.sources), spec.Policy.StaleAfter)
		w.sources = append(w.sources, &forecastSource{w: r.o.Hubs.Forecast.Watch(c, key.namespace, key.name, demand), c: c})
	}
	go func() {
		defer close(w.ready)
		ctx, cancel := context.WithTimeout(context.Background(), r.o.FirstWait)
		defer cancel()
		for _, s := range w.sources {
			_ = s.first(ctx) // a source still silent after FirstWait reads as "no reading yet"
		}
	}()
	return w
}

// Decide returns the decision for a ScaledObject's metadata, creating its
// watch if needed. The error is for bad metadata only; a failing source is in
// the decision.
func (r *Registry) Decide(ctx context.Context, namespace, name string, md map[string]string) (decide.Decision, error) {
	w, err := r.Get(ctx, namespace, name, md)
	if err != nil {
		return decide.Decision{}, err
	}
	return w.decide(r.o.Now()), nil
}

// Len reports the number of watches.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.watches)
}

// Run drops idle watches and cached specs until ctx is done, then closes
// every watch.
func (r *Registry) Run(ctx context.Context) {
	ticker := time.NewTicker(max(r.o.IdleAfter/10, 100*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			r.closeAll()
			return
		case <-ticker.C:
			r.sweep()
		}
	}
}

func (r *Registry) sweep() {
	now := r.o.Now()
	var dropped []*watch
	r.mu.Lock()
	for k, w := range r.watches {
		if w.streams.Load() == 0 && now.Sub(time.Unix(0, w.lastUsed.Load())) > r.o.IdleAfter {
			delete(r.watches, k)
			dropped = append(dropped, w)
		}
	}
	for k, p := range r.specs {
		if now.Sub(p.lastUsed) > r.o.IdleAfter {
			delete(r.specs, k)
		}
	}
	r.mu.Unlock()
	for _, w := range dropped {
		w.logger.Info("watch dropped: nobody asked for it", "idleAfter", r.o.IdleAfter)
		r.closeWatch(w)
	}
}

func (r *Registry) closeWatch(w *watch) {
	for _, s := range w.sources {
		s.close()
	}
	if r.o.OnDrop != nil {
		r.o.OnDrop(w.key.namespace, w.key.name)
	}
}

func (r *Registry) closeAll() {
	r.mu.Lock()
	ws := r.watches
	r.watches = map[watchKey]*watch{}
	r.mu.Unlock()
	for _, w := range ws {
		r.closeWatch(w)
	}
}

// each calls fn for every watch, outside the lock.
func (r *Registry) each(fn func(*watch)) {
	r.mu.Lock()
	ws := make([]*watch, 0, len(r.watches))
	for _, w := range r.watches {
		ws = append(ws, w)
	}
	r.mu.Unlock()
	for _, w := range ws {
		fn(w)
	}
}

// decide computes the watch's decision from its sources' latest readings.
func (w *watch) decide(now time.Time) decide.Decision {
	readings := make([]decide.Reading, 0, len(w.sources))
	for _, s := range w.sources {
		readings = append(readings, s.reading(now))
	}
	d := decide.Decide(now, w.spec.Policy, readings)
	d.Warnings = append(d.Warnings, w.spec.Warnings...)
	return d
}

// waitChange blocks until some source has a newer reading, tick fires, or
// done is closed. It reports false when done.
func (w *watch) waitChange(done <-chan struct{}, tick <-chan time.Time) bool {
	cases := make([]reflect.SelectCase, 0, len(w.sources)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(done)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(tick)})
	for _, s := range w.sources {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.changed())})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen != 0
}
