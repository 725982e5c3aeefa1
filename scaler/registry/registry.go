// Package registry keeps one watch per ScaledObject — its namespace, name
// and trigger metadata — with the spec parsed once and the sources a Factory
// made for it, and drops the watches nobody asked about, with their sources.
// A watch's decision is decide.Decide over its sources' latest readings: no
// call here waits on I/O, except a new watch's first answer (FirstWait).
package registry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/spec"
)

// Source is one component's shared evidence as one watch sees it.
type Source interface {
	// Name is the component's name ("celery", …).
	Name() string
	// Reading returns the latest evidence at now without waiting on I/O.
	Reading(now time.Time) decide.Reading
	// Changed is closed when the source has a newer reading; nil once the
	// source is closed.
	Changed() <-chan struct{}
	// First waits for the source's first reading (or ctx).
	First(ctx context.Context) error
	Close()
}

// Factory makes the sources of one ScaledObject's spec. A source may use
// the ones made before it: the registry closes them in reverse order, then
// calls release (nil: nothing to give back). A Factory may refuse a new
// watch (a process-wide limit): it then makes nothing, and the registry
// answers the error and keeps no watch; running watches are untouched.
type Factory interface {
	Sources(namespace, name string, s *spec.Spec) (sources []Source, release func(), err error)
}

// Options configure a Registry.
type Options struct {
	// Sources makes each new watch's sources.
	Sources Factory
	Parse   spec.Options
	Now     func() time.Time
	// IdleAfter drops a watch nobody asked about for this long (10m).
	IdleAfter time.Duration
	// FirstWait bounds how long the first answer of a new watch waits for
	// its sources (the rest never wait).
	FirstWait time.Duration
	Logger    *slog.Logger
	// OnDrop is called when a ScaledObject's last watch is dropped (to
	// forget its decision's series). A ScaledObject whose metadata changed
	// has a watch per version until the old one is idle: dropping that one
	// must not forget the series the current one keeps.
	OnDrop func(namespace, name string)
}

// Registry keeps one watch per (namespace, name, metadata) and drops those
// nobody asked about for IdleAfter, with their goroutines and connections.
type Registry struct {
	o Options

	mu      sync.Mutex
	watches map[watchKey]*Watch
	// specs are the parsed metadata of the watches (and of GetMetricSpec
	// before its watch starts); rejected are the errors of refused
	// metadata, at most MaxRejected, so that a client repeating a bad map
	// costs one parse, and one sending many cannot grow memory.
	specs    map[string]*parsedSpec
	rejected map[string]*parsedSpec
}

// MaxRejected bounds the cache of refused metadata; the entry used least
// recently goes first.
const MaxRejected = 256

type parsedSpec struct {
	spec     *spec.Spec
	err      error
	lastUsed time.Time
}

// New returns an empty Registry; run its janitor with Run.
func New(o Options) *Registry {
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
	return &Registry{o: o, watches: map[watchKey]*Watch{}, specs: map[string]*parsedSpec{}, rejected: map[string]*parsedSpec{}}
}

// Spec parses metadata once per distinct map and returns the cached result.
// Metadata beyond spec's limits is refused before it is hashed or cached.
func (r *Registry) Spec(md map[string]string) (*spec.Spec, error) {
	if err := spec.CheckLimits(md); err != nil {
		return nil, err
	}
	k := spec.Key(md)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.specLocked(k, md)
}

func (r *Registry) specLocked(k string, md map[string]string) (*spec.Spec, error) {
	now := r.o.Now()
	p, ok := r.specs[k]
	if !ok {
		p, ok = r.rejected[k]
	}
	if !ok {
		s, err := spec.Parse(md, r.o.Parse)
		p = &parsedSpec{spec: s, err: err}
		if err == nil {
			r.specs[k] = p
		} else {
			r.reject(k, p)
		}
	}
	p.lastUsed = now
	return p.spec, p.err
}

// reject caches refused metadata's error, dropping the least recently used
// entry when the cache is full.
func (r *Registry) reject(k string, p *parsedSpec) {
	if len(r.rejected) >= MaxRejected {
		var oldest string
		for ok, op := range r.rejected {
			if oldest == "" || op.lastUsed.Before(r.rejected[oldest].lastUsed) {
				oldest = ok
			}
		}
		delete(r.rejected, oldest)
	}
	r.rejected[k] = p
}

// Get returns the watch for a ScaledObject, creating it on first use. A new
// watch's first answer waits (at most FirstWait, and never past ctx) for its
// sources; later calls never wait. A new watch the Factory refuses is its
// error, and is asked for again on the next call (the limit may have room
// by then).
func (r *Registry) Get(ctx context.Context, namespace, name string, md map[string]string) (*Watch, error) {
	if err := spec.CheckLimits(md); err != nil {
		return nil, err
	}
	key := watchKey{namespace: namespace, name: name, metadata: spec.Key(md)}
	r.mu.Lock()
	w, ok := r.watches[key]
	if !ok {
		spec, err := r.specLocked(key.metadata, md)
		if err != nil {
			r.mu.Unlock()
			return nil, err
		}
		if w, err = r.newWatch(key, spec); err != nil {
			r.mu.Unlock()
			r.o.Logger.Warn("watch refused", "scaledObject", meta.ObjectRef(namespace, name), "err", err)
			return nil, err
		}
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

func (r *Registry) newWatch(key watchKey, s *spec.Spec) (*Watch, error) {
	sources, release, err := r.o.Sources.Sources(key.namespace, key.name, s)
	if err != nil {
		return nil, err
	}
	w := &Watch{
		key:     key,
		spec:    s,
		logger:  r.o.Logger.With("scaledObject", meta.ObjectRef(key.namespace, key.name)),
		ready:   make(chan struct{}),
		sources: sources,
		release: release,
	}
	go func() {
		defer close(w.ready)
		ctx, cancel := context.WithTimeout(context.Background(), r.o.FirstWait)
		defer cancel()
		for _, src := range w.sources {
			_ = src.First(ctx) // a source still silent after FirstWait reads as "no reading yet"
		}
	}()
	return w, nil
}

// Decide returns the decision for a ScaledObject's metadata, creating its
// watch if needed. The error is for bad metadata, or a new watch the
// Factory refused; a failing source is in the decision.
func (r *Registry) Decide(ctx context.Context, namespace, name string, md map[string]string) (decide.Decision, error) {
	w, err := r.Get(ctx, namespace, name, md)
	if err != nil {
		return decide.Decision{}, err
	}
	return w.Decide(r.o.Now()), nil
}

// Cached reports how many parsed specs and refused metadata errors the
// registry keeps.
func (r *Registry) Cached() (specs, rejected int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.specs), len(r.rejected)
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
			r.Close()
			return
		case <-ticker.C:
			r.sweep()
		}
	}
}

func (r *Registry) sweep() {
	now := r.o.Now()
	var dropped []*Watch
	var last []bool // per dropped watch: no other watch of its ScaledObject is left
	r.mu.Lock()
	for k, w := range r.watches {
		if w.streams.Load() == 0 && now.Sub(time.Unix(0, w.lastUsed.Load())) > r.o.IdleAfter {
			delete(r.watches, k)
			dropped = append(dropped, w)
		}
	}
	for _, w := range dropped {
		alone := true
		for k := range r.watches {
			alone = alone && (k.namespace != w.key.namespace || k.name != w.key.name)
		}
		last = append(last, alone)
	}
	for _, specs := range []map[string]*parsedSpec{r.specs, r.rejected} {
		for k, p := range specs {
			if now.Sub(p.lastUsed) > r.o.IdleAfter {
				delete(specs, k)
			}
		}
	}
	r.mu.Unlock()
	for i, w := range dropped {
		w.logger.Info("watch dropped: nobody asked for it", "idleAfter", r.o.IdleAfter)
		r.closeWatch(w, last[i])
	}
}

// closeWatch closes w's sources; last says no other watch of its
// ScaledObject is left, so that its metrics go too.
func (r *Registry) closeWatch(w *Watch, last bool) {
	// Last made, first closed: a source may read the ones made before it
	// (the forecast samples celery's and latency's asks as it closes).
	for i := len(w.sources) - 1; i >= 0; i-- {
		w.sources[i].Close()
	}
	if w.release != nil {
		w.release()
	}
	if last && r.o.OnDrop != nil {
		r.o.OnDrop(w.key.namespace, w.key.name)
	}
}

// Close closes every watch and its sources (Run does it when its ctx
// ends), the watches side by side: a source may take a while to close (its
// poller waits for the read in flight, a subscriber for its reconnect), and
// one behind the other, hundreds of brokers outlasted serve's shutdown.
func (r *Registry) Close() {
	r.mu.Lock()
	ws := r.watches
	r.watches = map[watchKey]*Watch{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { r.closeWatch(w, true) }) // every watch goes: forgetting twice is harmless
	}
	wg.Wait()
}

// Each calls fn for every watch, outside the lock.
func (r *Registry) Each(fn func(*Watch)) {
	r.mu.Lock()
	ws := make([]*Watch, 0, len(r.watches))
	for _, w := range r.watches {
		ws = append(ws, w)
	}
	r.mu.Unlock()
	for _, w := range ws {
		fn(w)
	}
}
