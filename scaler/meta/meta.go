// Package meta reads KEDA trigger metadata (a map of strings) into typed
// values, with errors that name the key, the value and what is allowed.
package meta

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is a bad metadata value. Every one maps to gRPC InvalidArgument.
type Error struct {
	Key     string
	Value   string // already redacted where it could hold a secret
	Allowed string
	// Blank says the key is set to "", which is then shown as the bad value
	// (an empty Value otherwise means the key is missing).
	Blank bool
}

// Clip limits of what an Error echoes: a key or value sent by a client may
// be megabytes long, and is shown only to be recognised.
const (
	clipKey   = 100
	clipValue = 200
)

// Error prints the key and the value clipped (see Clip), and is valid UTF-8
// whatever bytes they hold.
func (e *Error) Error() string {
	key, value := Clip(e.Key, clipKey), Clip(e.Value, clipValue)
	var s string
	switch {
	case e.Blank:
		s = fmt.Sprintf("metadata %q: bad value \"\": %s", key, e.Allowed)
	case e.Value == "" && e.Allowed == "":
		s = fmt.Sprintf("metadata %q is required", key)
	case e.Value == "":
		s = fmt.Sprintf("metadata %q: %s", key, e.Allowed)
	case e.Allowed == "":
		s = fmt.Sprintf("metadata %q: bad value %q", key, value)
	default:
		s = fmt.Sprintf("metadata %q: bad value %q: %s", key, value, e.Allowed)
	}
	return strings.ToValidUTF8(s, "\ufffd")
}

// Clip returns s as valid UTF-8 (invalid bytes become U+FFFD) and at most
// n bytes long, plus "…(N bytes)" when it cut something, N the full length
// of s. It cuts at a character boundary. Every text a client or an
// upstream chose (metadata values, error bodies) goes through it before it
// reaches a message, a log line or a proto field.
func Clip(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	// Cut first, so that a megabyte is never copied; then make it valid,
	// which may lengthen it (one byte becomes three), and cut again.
	v := strings.ToValidUTF8(s[:runeCut(s, n)], "\ufffd")
	if len(v) <= n && len(s) <= n {
		return v
	}
	return v[:runeCut(v, n)] + fmt.Sprintf("…(%d bytes)", len(s))
}

// runeCut is the largest i <= n at which s can be cut between characters.
func runeCut(s string, n int) int {
	if n >= len(s) {
		return len(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// ObjectRef names a ScaledObject in logs and messages: "namespace/name",
// or as much of it as is known ("(unnamed)" when nothing is), never a bare
// "/".
func ObjectRef(namespace, name string) string {
	switch {
	case namespace != "" && name != "":
		return namespace + "/" + name
	case name != "":
		return name
	case namespace != "":
		return namespace + "/(unnamed)"
	}
	return "(unnamed)"
}

// IsError reports whether err is (or wraps) a metadata Error.
func IsError(err error) bool {
	var me *Error
	return errors.As(err, &me)
}

// KEDAKeys are keys KEDA itself puts in the metadata; they are never warned about.
var KEDAKeys = []string{"scalerAddress", "enableTLS", "unsafeSsl"}

// Map is trigger metadata being read. It records which keys were used so the
// rest can be reported as unknown.
type Map struct {
	m      map[string]string
	used   map[string]bool
	replay bool
}

// New wraps raw metadata read by a command that reads the sources it names.
func New(m map[string]string) *Map {
	return &Map{m: m, used: map[string]bool{}}
}

// NewReplay wraps raw metadata read by a command that replays a trace
// instead of reading the sources (see Replay).
func NewReplay(m map[string]string) *Map {
	return &Map{m: m, used: map[string]bool{}, replay: true}
}

// Replay reports whether the metadata is read for a replay of a trace: the
// trace stands in for every source, so a component neither requires nor
// checks its address (brokerURL, prometheusURL, metricsURLs, calendarURL,
// their xFromEnv forms and credentials), and any of its keys configures it.
func (m *Map) Replay() bool { return m.replay }

// Skip marks keys, and their xFromEnv forms, as read without reading them:
// the keys of a component a command does not look at are known, not typos.
func (m *Map) Skip(keys ...string) {
	for _, k := range keys {
		m.used[k] = true
		m.used[k+"FromEnv"] = true
	}
}

// Asked returns every key a reader asked for, present or not, sorted.
func (m *Map) Asked() []string {
	out := make([]string, 0, len(m.used))
	for k := range m.used {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Lookup returns the trimmed value of key; an empty value counts as absent.
func (m *Map) Lookup(key string) (string, bool) {
	m.used[key] = true
	v, ok := m.m[key]
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Present reports whether key is in the metadata at all, even empty.
func (m *Map) Present(key string) bool {
	m.used[key] = true
	_, ok := m.m[key]
	return ok
}

// Empty is the error for key set to nothing usable (blank, or only
// separators): it shows the raw value, even when that is "".
func (m *Map) Empty(key, allowed string) error {
	return &Error{Key: key, Value: m.m[key], Allowed: allowed, Blank: m.m[key] == ""}
}

// String returns key's value or def.
func (m *Map) String(key, def string) string {
	if v, ok := m.Lookup(key); ok {
		return v
	}
	return def
}

// FromEnv reads key or keyFromEnv. keyFromEnv holds the value of the scale
// target's variable (KEDA resolves it; a command reading a metadata file
// resolves it first). Setting both is an error. found is false when neither
// gives a value.
func (m *Map) FromEnv(key string, secret bool) (value string, found bool, err error) {
	return m.FromEnvRedacted(key, func(v string) string { return redactIf(v, secret) })
}

// FromEnvRedacted is FromEnv for a value that redact hides in its error
// (RedactFeed for a calendar feed's address).
func (m *Map) FromEnvRedacted(key string, redact func(string) string) (value string, found bool, err error) {
	envKey := key + "FromEnv"
	v, ok := m.Lookup(key)
	ev, eok := m.Lookup(envKey)
	if ok && eok {
		return "", false, &Error{Key: key, Value: redact(v), Allowed: fmt.Sprintf("set %q or %q, not both", key, envKey)}
	}
	if ok {
		return v, true, nil
	}
	if !eok {
		return "", false, nil
	}
	return ev, true, nil
}

// Duration reads a Go duration ("90s", "1h") or a bare number of seconds.
// It must be > 0 unless allowZero.
func (m *Map) Duration(key string, def time.Duration, allowZero bool) (time.Duration, error) {
	v, ok := m.Lookup(key)
	if !ok {
		return def, nil
	}
	d, err := ParseDuration(v)
	if err != nil || d < 0 || (d == 0 && !allowZero) {
		allowed := "a positive Go duration such as 90s or 1h, or a bare number of seconds"
		if allowZero {
			allowed = "a Go duration such as 90s or 1h, or a bare number of seconds, not negative"
		}
		return 0, &Error{Key: key, Value: v, Allowed: allowed}
	}
	return d, nil
}

// ParseDuration parses a Go duration or a bare number of seconds.
func ParseDuration(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("duration %q out of range", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}

// Float reads a finite number within [lo, hi].
func (m *Map) Float(key string, def, lo, hi float64) (float64, error) {
	v, ok := m.Lookup(key)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < lo || f > hi {
		return 0, &Error{Key: key, Value: v, Allowed: fmt.Sprintf("a number from %g to %g", lo, hi)}
	}
	return f, nil
}

// OptFloat is Float for a key with no default: ok is false when absent.
func (m *Map) OptFloat(key string, lo, hi float64) (f float64, ok bool, err error) {
	if _, present := m.Lookup(key); !present {
		return 0, false, nil
	}
	f, err = m.Float(key, 0, lo, hi)
	return f, err == nil, err
}

// Int reads an integer within [lo, hi].
func (m *Map) Int(key string, def, lo, hi int) (int, error) {
	v, ok := m.Lookup(key)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &Error{Key: key, Value: v, Allowed: fmt.Sprintf("a whole number from %d to %d", lo, hi)}
	}
	return n, nil
}

// Bool reads true/false (also 1/0, yes/no).
func (m *Map) Bool(key string, def bool) (bool, error) {
	v, ok := m.Lookup(key)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, &Error{Key: key, Value: v, Allowed: "true or false"}
}

// List reads a comma-separated list, trimming items and dropping empty ones.
func (m *Map) List(key string, def []string) []string {
	v, ok := m.Lookup(key)
	if !ok {
		return def
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Unknown returns the keys that no reader asked for, sorted, KEDA's own excluded.
func (m *Map) Unknown() []string {
	var out []string
	for k := range m.m {
		if !m.used[k] && !slices.Contains(KEDAKeys, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
