package celery

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/meta"
)

// Defaults of kombu's Redis transport and of this scaler.
const (
	DefaultSeparator         = "\x06\x16"
	DefaultVisibilityTimeout = time.Hour
	DefaultTasksPerReplica   = 5
	DefaultQueue             = "celery"
)

// Limits on one ScaledObject's layout: its lists are read in the broker's
// shared poll, so one object must not make that poll slow for the others
// (1,000 LLENs cost about a millisecond on a local Redis).
const (
	// MaxQueues is how many queue names one trigger may list.
	MaxQueues = 100
	// MaxLists is how many Redis lists (queues × priority steps) one
	// trigger may have read in each poll.
	MaxLists = 1000
)

// DefaultPrioritySteps are kombu's priority_steps.
func DefaultPrioritySteps() []int { return []int{0, 3, 6, 9} }

// Layout is kombu's Redis transport options for one ScaledObject: which
// lists hold its queues and how to read the unacked hash.
type Layout struct {
	Queues            []string
	PrioritySteps     []int         // default 0,3,6,9
	Separator         string        // default "\x06\x16"
	KeyPrefix         string        // kombu global_keyprefix
	VisibilityTimeout time.Duration // default 1h
	// AcksLate says the workers use task_acks_late (default true): running
	// tasks stay in unacked. With false a task leaves unacked when it starts,
	// and InFlight adds Σ active of every worker whose heartbeat on this db
	// (and key prefix) is fresh: that sum assumes the scaled Deployment's
	// workers are the ones consuming these queues.
	AcksLate bool
	// ShareFirstSeen keeps, in the broker, when a message without a publish
	// stamp was first seen at the head of its list, so that every scaler
	// replica reads the same age (set with queueWaitTarget). Without it
	// the scaler writes nothing and such ages are this replica's, shown
	// only.
	ShareFirstSeen bool
}

// DefaultLayout is the layout of a Celery app with default transport options
// and acks_late, for the given queues.
func DefaultLayout(queues ...string) Layout {
	if len(queues) == 0 {
		queues = []string{DefaultQueue}
	}
	return Layout{
		Queues:            queues,
		PrioritySteps:     DefaultPrioritySteps(),
		Separator:         DefaultSeparator,
		VisibilityTimeout: DefaultVisibilityTimeout,
		AcksLate:          true,
	}
}

// Lists returns the Redis keys of queue q: kombu puts priority step 0 in the
// bare name and step s in q+sep+s, all behind the key prefix.
func (l Layout) Lists(q string) []string {
	out := []string{l.KeyPrefix + q}
	for _, s := range l.PrioritySteps {
		if s != 0 {
			out = append(out, l.KeyPrefix+q+l.Separator+strconv.Itoa(s))
		}
	}
	return out
}

// ID is a stable identity of the layout: watches with equal layouts share
// one reading.
func (l Layout) ID() string {
	return fmt.Sprintf("%q|%v|%q|%q|%d|%t|%t", l.Queues, l.PrioritySteps, l.Separator, l.KeyPrefix, l.VisibilityTimeout, l.AcksLate, l.ShareFirstSeen)
}

// Normalize returns l with the defaults for its zero fields (the default
// queue, kombu's priority steps, separator and visibility timeout) and a
// queue list of its own: the layout a watch reads.
func (l Layout) Normalize() Layout {
	if len(l.Queues) == 0 {
		l.Queues = []string{DefaultQueue}
	}
	l.Queues = slices.Clone(l.Queues)
	if l.PrioritySteps == nil {
		l.PrioritySteps = DefaultPrioritySteps()
	}
	if l.Separator == "" {
		l.Separator = DefaultSeparator
	}
	if l.VisibilityTimeout <= 0 {
		l.VisibilityTimeout = DefaultVisibilityTimeout
	}
	return l
}

// Config is the Celery part of one ScaledObject's trigger metadata.
type Config struct {
	Broker          Broker
	Layout          Layout
	TasksPerReplica float64
	// QueueWaitTarget is how long a task may wait for a worker before the
	// component asks for more replicas; 0: the wait is shown only.
	QueueWaitTarget time.Duration
	// PodStartup is podStartupTime: how long a rise of the ask takes to
	// give a new worker, for the wait-based ask; 0: learned from the
	// heartbeats (DefaultPodStartup until then).
	PodStartup time.Duration
}

// MaxQueueWaitTarget bounds queueWaitTarget.
const MaxQueueWaitTarget = 24 * time.Hour

// celeryKeys are the keys that only make sense with a broker.
var celeryKeys = []string{"sentinelMaster", "queues", "tasksPerReplica", "prioritySteps", "prioritySeparator", "keyPrefix", "visibilityTimeout", "acksLate", "queueWaitTarget", "podStartupTime"}

// Keys returns every metadata key ParseConfig reads (xFromEnv forms implied).
func Keys() []string { return append([]string{brokerKey}, celeryKeys...) }

// ParseConfig reads the Celery keys from trigger metadata. It returns
// (nil, nil) when no Celery key is present at all. When m is read for a
// replay (meta.Map.Replay) the broker is neither required nor parsed: the
// Config's Broker is then zero.
func ParseConfig(m *meta.Map) (*Config, error) {
	c := &Config{Layout: DefaultLayout()}
	if present, err := c.parseBroker(m); !present || err != nil {
		return nil, err
	}
	if err := c.Layout.parseQueues(m); err != nil {
		return nil, err
	}
	var err error
	if c.TasksPerReplica, err = m.Float("tasksPerReplica", DefaultTasksPerReplica, 0.001, 1e6); err != nil {
		return nil, err
	}
	if err := c.Layout.parseLists(m); err != nil {
		return nil, err
	}
	c.Layout.KeyPrefix = m.String("keyPrefix", "")
	if c.Layout.VisibilityTimeout, err = m.Duration("visibilityTimeout", DefaultVisibilityTimeout, false); err != nil {
		return nil, err
	}
	if c.Layout.AcksLate, err = m.Bool("acksLate", true); err != nil {
		return nil, err
	}
	if c.QueueWaitTarget, err = m.Duration("queueWaitTarget", 0, false); err != nil {
		return nil, err
	}
	if c.QueueWaitTarget > MaxQueueWaitTarget {
		v, _ := m.Lookup("queueWaitTarget")
		return nil, &meta.Error{Key: "queueWaitTarget", Value: v, Allowed: "at most 24h"}
	}
	c.Layout.ShareFirstSeen = c.QueueWaitTarget > 0
	if c.PodStartup, err = m.Duration("podStartupTime", 0, false); err != nil {
		return nil, err
	}
	if c.PodStartup > MaxPodStartup {
		v, _ := m.Lookup("podStartupTime")
		return nil, &meta.Error{Key: "podStartupTime", Value: v, Allowed: "at most 1h"}
	}
	return c, nil
}

// parseBroker reads brokerURL (or brokerURLFromEnv) and sentinelMaster
// into c.Broker; present is false when no Celery key is set at all.
func (c *Config) parseBroker(m *meta.Map) (present bool, err error) {
	raw, found, err := m.FromEnv(brokerKey, true)
	if err != nil {
		return false, err
	}
	if !found {
		var set []string
		for _, k := range celeryKeys {
			if m.Present(k) {
				set = append(set, k)
			}
		}
		if len(set) == 0 {
			return false, nil
		}
		if !m.Replay() {
			return false, fmt.Errorf("%w: %s set but neither brokerURL nor brokerURLFromEnv has a value "+
				"(KEDA drops brokerURLFromEnv when the container's variable is unset or empty)",
				&meta.Error{Key: brokerKey}, strings.Join(set, ", "))
		}
	}
	sentinel := m.String("sentinelMaster", "")
	if found && !m.Replay() {
		if c.Broker, err = ParseBrokerURL(raw, sentinel); err != nil {
			return false, err
		}
	}
	return true, nil
}

// parseQueues reads queues: sorted, each once, at most MaxQueues.
func (l *Layout) parseQueues(m *meta.Map) error {
	if !m.Present("queues") {
		return nil
	}
	l.Queues = m.List("queues", nil)
	if len(l.Queues) == 0 {
		// An empty list is a mistake, not a wish for the default queue.
		return m.Empty("queues", `comma-separated Celery queue names, at least one (leave the key out for the default queue "celery")`)
	}
	slices.Sort(l.Queues)
	l.Queues = slices.Compact(l.Queues)
	if n := len(l.Queues); n > MaxQueues {
		return &meta.Error{Key: "queues", Allowed: fmt.Sprintf("%d queue names, more than the %d allowed", n, MaxQueues)}
	}
	return nil
}

// parseLists reads how a queue's lists are named (prioritySteps,
// prioritySeparator), the queues read first: they are at most MaxLists.
func (l *Layout) parseLists(m *meta.Map) error {
	var err error
	if v, ok := m.Lookup("prioritySteps"); ok {
		if l.PrioritySteps, err = parseSteps(v); err != nil {
			return &meta.Error{Key: "prioritySteps", Value: v, Allowed: "comma-separated whole numbers from 0 to 255 in ascending order, such as 0,3,6,9"}
		}
	}
	if per := len(l.Lists("")); len(l.Queues)*per > MaxLists {
		return &meta.Error{Key: "prioritySteps", Allowed: fmt.Sprintf(
			"%d queues × %d lists each = %d Redis lists to poll, more than the %d allowed",
			len(l.Queues), per, len(l.Queues)*per, MaxLists)}
	}
	if v, ok := m.Lookup("prioritySeparator"); ok {
		if l.Separator, err = unescape(v); err != nil || l.Separator == "" {
			return &meta.Error{Key: "prioritySeparator", Value: v, Allowed: `a non-empty string; escapes such as \x06\x16 allowed`}
		}
	}
	return nil
}

func parseSteps(v string) ([]int, error) {
	var out []int
	for item := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(item))
		if err != nil || n < 0 || n > 255 || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("bad step %q", item)
		}
		out = append(out, n)
	}
	return out, nil
}

// unescape decodes Go-style escapes (\x06, \u0016, \t, \\) in v.
func unescape(v string) (string, error) {
	var b strings.Builder
	for v != "" {
		r, multi, tail, err := strconv.UnquoteChar(v, 0)
		if err != nil {
			return "", err
		}
		if !multi {
			b.WriteByte(byte(r)) // \xNN is a byte, not a code point
		} else {
			b.WriteRune(r)
		}
		v = tail
	}
	return b.String(), nil
}
