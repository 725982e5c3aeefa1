package source_test

import (
	"errors"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/registry/registrytest"
	"github.com/montage/montage-scaler/scaler/source"
)

// TestObjectsGiveEachScaledObjectsNewestReadingUntilItsSourceCloses: a
// hub's collector reads, per ScaledObject, the reading of its newest
// source (a changed metadata makes a second one), fresh by decide's rule,
// and nothing once its sources are closed.
func TestObjectsGiveEachScaledObjectsNewestReadingUntilItsSourceCloses(t *testing.T) {
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	policy := decide.Policy{StaleAfter: time.Minute}
	var objs source.Objects
	req := func(name string) source.Request {
		return source.Request{Namespace: "media", Name: name, Policy: policy}
	}
	ask := func(v float64) decide.Opinion { return decide.Opinion{Desired: decide.Ptr(v)} }

	old, cur, other := registrytest.NewSource("celery"), registrytest.NewSource("celery"), registrytest.NewSource("celery")
	oldT := objs.Track(req("worker"), old)
	curT := objs.Track(req("worker"), cur)
	otherT := objs.Track(req("api"), other)
	old.Set(ask(1), now, nil)
	cur.Set(ask(2), now, nil)
	other.Set(ask(5), now.Add(-2*time.Minute), errors.New("down")) // past staleAfter while failing

	got := map[string]source.ObjectReading{}
	for _, o := range objs.Latest(now) {
		got[o.Name] = o
	}
	if w := got["worker"]; len(got) != 2 || w.Reading.Opinion.Desired == nil || *w.Reading.Opinion.Desired != 2 || !w.Fresh {
		t.Fatalf("worker = %+v (of %d): want the newest source's fresh reading, 2", w, len(got))
	}
	if a := got["api"]; a.Fresh {
		t.Errorf("api = %+v: a reading past staleAfter while failing is not fresh", a)
	}

	curT.Close() // the newest version dropped: the older one is what is left
	for _, o := range objs.Latest(now) {
		if o.Name == "worker" && (o.Reading.Opinion.Desired == nil || *o.Reading.Opinion.Desired != 1) {
			t.Fatalf("worker = %+v after its newest source closed: want the older one's reading, 1", o)
		}
	}
	oldT.Close()
	otherT.Close()
	if l := objs.Latest(now); len(l) != 0 || !old.Closed() || !cur.Closed() {
		t.Fatalf("%d objects after every source closed (sources closed: %t %t), want 0", len(l), old.Closed(), cur.Closed())
	}
}
