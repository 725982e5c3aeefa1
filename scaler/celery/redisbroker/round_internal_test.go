package redisbroker

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
)

func TestRoundsPackTheSmallestLayoutsFirstAndNeverSplitOne(t *testing.T) {
	queues := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%03d", prefix, i)
		}
		return out
	}
	atLimit := func(name, keyPrefix string) celery.Layout {
		l := celery.Layout{Queues: queues(name, celery.MaxQueues), PrioritySteps: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, KeyPrefix: keyPrefix}.Normalize()
		return l
	}
	small := celery.Layout{Queues: []string{"video"}}.Normalize()
	medium := celery.Layout{Queues: queues("m", 150)}.Normalize() // 600 lists
	layouts := map[string]celery.Layout{}
	for _, l := range []celery.Layout{atLimit("big-a", ""), atLimit("big-b", "other:"), small, medium, celery.Layout{Queues: queues("n", 100)}.Normalize()} {
		layouts[l.ID()] = l
	}
	rounds := plan(layouts)
	var got [][]int
	for _, r := range rounds {
		var sizes []int
		n := 0
		for _, id := range r.ids {
			l := layouts[id]
			sizes = append(sizes, len(l.Queues)*len(l.Lists("")))
			n += sizes[len(sizes)-1]
		}
		if n > RoundLists {
			t.Fatalf("a round of %d lists", n)
		}
		got = append(got, sizes)
	}
	want := [][]int{{4, 400}, {600}, {1000}, {1000}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rounds of %v lists, want %v", got, want)
	}
	// The small layout's round reads the default prefix's unacked hash;
	// the other prefix is read by the round of the layout that uses it.
	if _, ok := rounds[0].prefixes[""]; !ok || len(rounds[0].prefixes) != 1 {
		t.Fatalf("first round reads the unacked hashes of %v", rounds[0].prefixes)
	}
	var other, ofB []int
	for i, r := range rounds {
		if _, ok := r.prefixes["other:"]; ok {
			other = append(other, i)
		}
		if slices.Contains(r.ids, atLimit("big-b", "other:").ID()) {
			ofB = append(ofB, i)
		}
	}
	if len(other) != 1 || !slices.Equal(other, ofB) {
		t.Fatalf("the other prefix's hash is read by rounds %v, want the one of its layout, %v", other, ofB)
	}
	if again := plan(layouts); fmt.Sprint(again[0].ids) != fmt.Sprint(rounds[0].ids) {
		t.Fatal("the packing changes from poll to poll")
	}
}

// A broker that cannot be reached at all fails every round alike: the
// first round's dial failure is every round's error, and the other rounds
// are not dialled again (with go-redis's own dial retries each would take
// as long).
func TestAnUnreachableBrokerIsDialledOncePerPoll(t *testing.T) {
	b, err := celery.ParseBrokerURL("redis://127.0.0.1:1/0", "")
	if err != nil {
		t.Fatal(err)
	}
	hook := &countHook{}
	o := Options{Hooks: []redis.Hook{hook}, DialTimeout: 200 * time.Millisecond}.withDefaults()
	steps := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	ls := []celery.Layout{
		celery.Layout{Queues: []string{"small"}}.Normalize(),
		celery.Layout{Queues: queueNames("a", celery.MaxQueues), PrioritySteps: steps}.Normalize(),
		celery.Layout{Queues: queueNames("b", celery.MaxQueues), PrioritySteps: steps}.Normalize(),
	}
	bc := newConn(o, b, newHBShare())
	t.Cleanup(bc.Close)
	_, err = bc.Poll(t.Context(), byID(ls))
	if !dialFailed(err) || !strings.Contains(err.Error(), "celery: poll redis://127.0.0.1:1/0: dial tcp 127.0.0.1:1") {
		t.Fatalf("poll: %v, want the dial failure", err)
	}
	if n := hook.n.Load(); n != 1 {
		t.Fatalf("%d pipelines tried for 3 rounds, want 1", n)
	}
}

func queueNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// byID keys layouts by their ID, as the Hub gives them to Conn.Poll.
func byID(ls []celery.Layout) map[string]celery.Layout {
	out := make(map[string]celery.Layout, len(ls))
	for _, l := range ls {
		out[l.ID()] = l
	}
	return out
}
