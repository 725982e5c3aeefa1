package quota_test

import (
	"errors"
	"testing"

	"github.com/montage/montage-scaler/scaler/quota"
)

func broker(key string) quota.Claim {
	return quota.Claim{Kind: quota.Brokers, Key: key, Shown: "redis://h/" + key}
}

func lists(key string, n int) quota.Claim {
	return quota.Claim{Kind: quota.Lists, Key: key, Shown: "redis://h/" + key, Amount: n}
}

func testLedger() *quota.Ledger {
	return quota.New(map[quota.Kind]quota.Limits{
		quota.Brokers: {Process: quota.Limit{Max: 3, Flag: "--max-brokers"}, Namespace: quota.Limit{Max: 2, Flag: "--max-brokers-per-namespace"}},
		quota.Lists: {Process: quota.Limit{Max: 100, Flag: "--max-lists"}, Namespace: quota.Limit{Max: 60, Flag: "--max-lists-per-namespace"},
			Upstream: quota.Limit{Max: 50, Flag: "--max-lists-per-broker"}},
	})
}

func TestReserveCountsDistinctUpstreamsAndAmountsInEveryScope(t *testing.T) {
	type step struct {
		namespace string
		claims    []quota.Claim
		want      string // the refusal, "" when accepted
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"watches sharing a broker count it once", []step{
			{"a", []quota.Claim{broker("1")}, ""},
			{"a", []quota.Claim{broker("1")}, ""},
			{"a", []quota.Claim{broker("1"), broker("1")}, ""},
			{"a", []quota.Claim{broker("2")}, ""},
		}},
		{"a namespace's third broker is refused naming the namespace", []step{
			{"a", []quota.Claim{broker("1")}, ""},
			{"a", []quota.Claim{broker("2")}, ""},
			{"a", []quota.Claim{broker("3")}, `resource exhausted: redis://h/3 would be broker number 3 of namespace "a", beyond --max-brokers-per-namespace 2 (running watches are kept; a watch's share is freed when it has been idle for --idle-after)`},
			{"b", []quota.Claim{broker("3")}, ""},
		}},
		{"the process's fourth broker is refused whatever the namespace", []step{
			{"a", []quota.Claim{broker("1")}, ""},
			{"b", []quota.Claim{broker("2")}, ""},
			{"c", []quota.Claim{broker("3")}, ""},
			{"d", []quota.Claim{broker("4")}, `resource exhausted: redis://h/4 would be broker number 4 of the process, beyond --max-brokers 3 (running watches are kept; a watch's share is freed when it has been idle for --idle-after)`},
			{"d", []quota.Claim{broker("1")}, ""},
		}},
		{"lists add up per broker", []step{
			{"a", []quota.Claim{lists("1", 30)}, ""},
			{"b", []quota.Claim{lists("1", 30)}, `resource exhausted: 30 more lists on redis://h/1 would make 60 in its shared poll, beyond --max-lists-per-broker 50 (running watches are kept; a watch's share is freed when it has been idle for --idle-after)`},
			{"b", []quota.Claim{lists("2", 30)}, ""},
		}},
		{"lists add up per namespace and per process", []step{
			{"a", []quota.Claim{lists("1", 40)}, ""},
			{"a", []quota.Claim{lists("2", 21)}, `resource exhausted: 21 more lists on redis://h/2 would make 61 in namespace "a", beyond --max-lists-per-namespace 60 (running watches are kept; a watch's share is freed when it has been idle for --idle-after)`},
			{"b", []quota.Claim{lists("2", 40)}, ""},
			{"c", []quota.Claim{lists("3", 21)}, `resource exhausted: 21 more lists on redis://h/3 would make 101 in the process, beyond --max-lists 100 (running watches are kept; a watch's share is freed when it has been idle for --idle-after)`},
		}},
		{"a refused reservation takes nothing", []step{
			{"a", []quota.Claim{broker("1"), lists("1", 20)}, ""},
			{"a", []quota.Claim{broker("2"), lists("2", 20), broker("3")}, `resource exhausted: redis://h/3 would be broker number 3 of namespace "a", beyond --max-brokers-per-namespace 2 (running watches are kept; a watch's share is freed when it has been idle for --idle-after)`},
			{"a", []quota.Claim{broker("2"), lists("2", 40)}, ""},
		}},
		{"claims of one reservation count among themselves", []step{
			{"a", []quota.Claim{lists("1", 30), lists("1", 30)}, `resource exhausted: 30 more lists on redis://h/1 would make 60 in its shared poll, beyond --max-lists-per-broker 50 (running watches are kept; a watch's share is freed when it has been idle for --idle-after)`},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testLedger()
			for i, s := range tc.steps {
				release, err := l.Reserve(s.namespace, s.claims)
				got := ""
				if err != nil {
					got = err.Error()
					if !errors.Is(err, quota.ErrExhausted) || release != nil {
						t.Fatalf("step %d: %v is not ErrExhausted, or a release came with it", i, err)
					}
				}
				if got != s.want {
					t.Fatalf("step %d:\n got %q\nwant %q", i, got, s.want)
				}
			}
		})
	}
}

func TestReleaseGivesBackOnceAndFreesTheUpstream(t *testing.T) {
	l := testLedger()
	var releases []func()
	for _, k := range []string{"1", "2", "3"} {
		r, err := l.Reserve("ns-"+k, []quota.Claim{broker(k), lists(k, 30)})
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	if _, err := l.Reserve("ns-4", []quota.Claim{broker("4")}); err == nil {
		t.Fatal("a fourth broker was accepted")
	}
	releases[0]()
	releases[0]() // twice: nothing more is given back
	if got := l.Usage(quota.Brokers); got != 2 {
		t.Fatalf("%d brokers held after one release, want 2", got)
	}
	if got := l.Usage(quota.Lists); got != 60 {
		t.Fatalf("%d lists held after one release, want 60", got)
	}
	if _, err := l.Reserve("ns-4", []quota.Claim{broker("4"), lists("4", 40)}); err != nil {
		t.Fatalf("the freed slot: %v", err)
	}
	for _, r := range releases[1:] {
		r()
	}
	if got := l.Usage(quota.Brokers); got != 1 {
		t.Fatalf("%d brokers held, want 1", got)
	}
}

func TestAKindWithoutLimitsIsUnbounded(t *testing.T) {
	l := quota.New(nil)
	for i := range 1000 {
		if _, err := l.Reserve("a", []quota.Claim{{Kind: quota.Feeds, Key: string(rune(i)), Shown: "f"}}); err != nil {
			t.Fatal(err)
		}
	}
}
