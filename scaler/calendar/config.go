// Package calendar is the calendar component's pure half: the calendar
// keys of trigger metadata (Keys, ParseConfig, Timezone), the feed address
// that prints redacted (FeedURL), the shared copy of a feed (Feed), the
// component's opinion of it (Opinion), its quota claims, the limits a feed
// may cost (Limits) and the listing the `calendar` command prints. It does
// no I/O: package feed fetches feeds under the network policy and shares
// one fetch loop per URL (feed.Hub); package ical parses the feeds and
// expands their events into windows.
//
// Wiring: ParseConfig per ScaledObject; feed.Hub.Watch shares the fetch
// loop of one URL; Feed.Expand turns the copy a Watch holds into the
// windows the scaler's calendar source judges (Opinion). feed.FetchOnce,
// List and RenderTable serve `check` and `calendar`.
//
// Failure rule: a feed's last good copy is kept however old (its events are
// future facts). A feed that has never had one is retried with backoff
// (feed.FirstRetry, doubling up to feed.MaxFirstRetry) and has no opinion
// meanwhile; the scaler's calendar source is Optional, so that absence
// never withholds the other components' decision.
package calendar

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
)

// Metadata keys read by ParseConfig.
const (
	KeyURL                = "calendarURL"
	KeyTimezone           = "calendarTimezone"
	KeyLeadTime           = "calendarLeadTime"
	KeyHold               = "calendarHold"
	KeyReplicas           = "calendarReplicas"
	KeyIncludeTransparent = "calendarIncludeTransparent"
)

// Defaults of the calendar metadata keys.
const (
	DefaultLeadTime = 10 * time.Minute
	DefaultHold     = 5 * time.Minute
	DefaultReplicas = 4.0
)

// FeedURL is a calendar feed address. It prints redacted, so logging or
// formatting it never leaks the secret token of a "secret address".
type FeedURL struct {
	u url.URL
}

// ParseFeedURL accepts http, https and webcal (fetched as https) URLs.
func ParseFeedURL(raw string) (FeedURL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return FeedURL{}, fmt.Errorf("calendar: URL does not parse")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		u.Scheme = strings.ToLower(u.Scheme)
	case "webcal", "webcals":
		u.Scheme = "https"
	default:
		return FeedURL{}, fmt.Errorf("calendar: URL scheme %q is not http, https or webcal", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return FeedURL{}, fmt.Errorf("calendar: URL has no host")
	}
	u.Fragment = ""
	return FeedURL{u: *u}, nil
}

// Redacted returns the URL with everything that may be a secret replaced by
// "xxxxx" (meta.RedactFeed): user info, query values and every path segment
// but the file name — a feed's secret address is its path, and a token
// need not look like one (Nextcloud's share tokens are letters only).
func (f FeedURL) Redacted() string {
	if f.u.Host == "" {
		return ""
	}
	return meta.RedactFeed(f.u.String())
}

// String is the redacted form, so a FeedURL is safe in any log line.
func (f FeedURL) String() string { return f.Redacted() }

// MarshalText is the redacted form, for JSON and YAML.
func (f FeedURL) MarshalText() ([]byte, error) { return []byte(f.Redacted()), nil }

// LogValue is the redacted form, for slog.
func (f FeedURL) LogValue() slog.Value { return slog.StringValue(f.Redacted()) }

// Host returns the host[:port] the feed is fetched from.
func (f FeedURL) Host() string { return f.u.Host }

// IsZero reports whether f holds no URL.
func (f FeedURL) IsZero() bool { return f.u.Host == "" }

// Raw is the real URL, secret included: for fetching and as the sharing
// key only, never for printing.
func (f FeedURL) Raw() string { return f.u.String() }

// URL returns a copy of the real URL, secret included, for the network
// policy's checks only.
func (f FeedURL) URL() *url.URL {
	u := f.u
	return &u
}

// Config is one ScaledObject's calendar component.
type Config struct {
	URL FeedURL
	// Timezone places floating times and all-day events.
	Timezone *time.Location
	// LeadTime is how long before an event's start its replicas are wanted.
	LeadTime time.Duration
	// Hold is how long after an event's end its replicas are kept.
	Hold time.Duration
	// DefaultReplicas is used for an event that carries no hint.
	DefaultReplicas float64
	// IncludeTransparent counts TRANSP:TRANSPARENT ("free") events too.
	IncludeTransparent bool
	// MaxReplicas clamps an event's hint; nil means no clamp. Filled by the
	// caller from the ScaledObject's maxReplicas.
	MaxReplicas *float64
}

// settingKeys are the calendar keys besides the feed's address.
var settingKeys = []string{KeyTimezone, KeyLeadTime, KeyHold, KeyReplicas, KeyIncludeTransparent}

// Keys returns every metadata key ParseConfig reads (xFromEnv forms implied).
func Keys() []string { return append([]string{KeyURL}, settingKeys...) }

// ParseConfig reads the calendar keys of trigger metadata. It returns
// (nil, nil) when no calendar key is present; errors are *meta.Error. When
// m is read for a replay (meta.Map.Replay) the feed's address is neither
// required nor parsed (the Config's URL is then zero).
func ParseConfig(m *meta.Map) (*Config, error) {
	raw, found, err := m.FromEnvRedacted(KeyURL, meta.RedactFeed)
	if err != nil {
		return nil, err
	}
	others := false
	for _, k := range settingKeys {
		if _, ok := m.Lookup(k); ok {
			others = true
		}
	}
	if !found && !others {
		return nil, nil
	}
	c := &Config{Timezone: time.UTC}
	switch {
	case m.Replay():
	case !found:
		return nil, &meta.Error{Key: KeyURL, Allowed: ""}
	default:
		if c.URL, err = ParseFeedURL(raw); err != nil {
			return nil, &meta.Error{Key: KeyURL, Value: meta.RedactFeed(raw), Allowed: "an http, https or webcal URL of an iCalendar feed"}
		}
	}
	if loc, err := Timezone(m); err != nil {
		return nil, err
	} else if loc != nil {
		c.Timezone = loc
	}
	if c.LeadTime, err = m.Duration(KeyLeadTime, DefaultLeadTime, true); err != nil {
		return nil, err
	}
	if c.Hold, err = m.Duration(KeyHold, DefaultHold, true); err != nil {
		return nil, err
	}
	if c.LeadTime > 7*24*time.Hour {
		return nil, &meta.Error{Key: KeyLeadTime, Value: m.String(KeyLeadTime, ""), Allowed: "at most 168h"}
	}
	if c.Hold > 7*24*time.Hour {
		return nil, &meta.Error{Key: KeyHold, Value: m.String(KeyHold, ""), Allowed: "at most 168h"}
	}
	if c.DefaultReplicas, err = m.Float(KeyReplicas, DefaultReplicas, 0, decide.Ceiling); err != nil {
		return nil, err
	}
	if c.IncludeTransparent, err = m.Bool(KeyIncludeTransparent, false); err != nil {
		return nil, err
	}
	return c, nil
}

// DefaultConfig is the calendar component with every setting at its
// default and no feed: what a replay uses for a feed file given beside
// metadata that has no calendar keys.
func DefaultConfig() *Config {
	return &Config{Timezone: time.UTC, LeadTime: DefaultLeadTime, Hold: DefaultHold, DefaultReplicas: DefaultReplicas}
}

// Expansion returns the options c's feed is expanded with.
func (c *Config) Expansion() ical.Options {
	return ical.Options{
		Zone:               c.Timezone,
		LeadTime:           c.LeadTime,
		Hold:               c.Hold,
		DefaultReplicas:    c.DefaultReplicas,
		IncludeTransparent: c.IncludeTransparent,
		MaxReplicas:        c.MaxReplicas,
	}
}

// Limits are the serve flags that bound what a feed may cost.
type Limits struct {
	// MaxBytes caps a feed body (after decompression): --calendar-max-bytes.
	MaxBytes int64
	// FetchTimeout bounds one fetch, redirects and body included.
	FetchTimeout time.Duration
	// MaxEvents caps the VEVENTs of one feed.
	MaxEvents int
	// MaxSteps caps the recurrence steps of one expansion of a feed, all
	// its events together: --calendar-max-steps.
	MaxSteps int
	// MaxEventSteps caps the recurrence steps of one event in one
	// expansion: --calendar-max-event-steps. An event beyond it, or beyond
	// what is left of MaxSteps, is skipped with a warning; the rest of the
	// feed is kept.
	MaxEventSteps int
	// AllowHosts are --calendar-allow-host values: host, host:port or CIDR
	// (see feed.ParseAllowHost) that may be fetched although they are private.
	AllowHosts []string
	// AllowPrivate lets feeds live on loopback, private and link-local
	// addresses (cloud metadata addresses still need AllowHosts).
	AllowPrivate bool
}

// DefaultLimits returns the serve flags' defaults.
func DefaultLimits() Limits {
	d := ical.DefaultLimits()
	return Limits{
		MaxBytes:      d.MaxBytes,
		FetchTimeout:  20 * time.Second,
		MaxEvents:     d.MaxEvents,
		MaxSteps:      d.MaxSteps,
		MaxEventSteps: d.MaxEventSteps,
	}
}

// ICal returns the limits package ical enforces when it parses and expands.
func (l Limits) ICal() ical.Limits {
	return ical.Limits{MaxBytes: l.MaxBytes, MaxEvents: l.MaxEvents, MaxSteps: l.MaxSteps, MaxEventSteps: l.MaxEventSteps}
}

// WithDefaults returns l with every bound that is not set (zero or less)
// at its default; the allow rules are kept as they are.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.FetchTimeout <= 0 {
		l.FetchTimeout = d.FetchTimeout
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = d.MaxEvents
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = d.MaxSteps
	}
	if l.MaxEventSteps <= 0 {
		l.MaxEventSteps = d.MaxEventSteps
	}
	return l
}

// Timezone reads calendarTimezone: the creators' zone, for the calendar's
// floating times and all-day events and the forecast's weeks; nil when the
// key is not set.
func Timezone(m *meta.Map) (*time.Location, error) {
	tz, ok := m.Lookup(KeyTimezone)
	if !ok {
		return nil, nil
	}
	loc, err := ical.LoadZone(tz)
	if err != nil {
		return nil, &meta.Error{Key: KeyTimezone, Value: tz, Allowed: "an IANA time zone such as Europe/Berlin (or a Windows zone name such as W. Europe Standard Time)"}
	}
	return loc, nil
}
