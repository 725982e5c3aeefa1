// Package forecast learns a ScaledObject's weekly habit from the scaler's own
// observations and forecasts the demand of the coming slot of the week.
//
// The history is the demand of each 5-minute bucket: the replicas the
// celery tasks that arrived in it needed (EstimateDemand, from the broker's
// counts and the workers' completions, not the backlog that built while too
// few replicas ran) and the latency component's largest ask. It is kept in
// the broker the ScaledObject already names under the scaler's own key
// prefix, so that every scaler replica shares it and a restart loses
// nothing. A recorder closes each bucket (Bucketer) and writes it in one
// round trip (a Lua max per field, so replicas writing the same bucket
// agree); a shared poller reads the history back (both in package store,
// this package's I/O half); Evaluate turns it into
// decide.ForecastEvidence without I/O. Histories written before demand was
// recorded (the celery component's asks) still load: a bucket's legacy ask
// counts only where the bucket has no demand, and ages out.
//
// Weeks are the creators' weeks: the slots of the week (7 × 288 of 5
// minutes) are wall-clock times in forecastTimezone, so a habit at 18:00
// stays at 18:00 across daylight-saving changes (see History.Estimate for
// the 23- and 25-hour days). Buckets are stored by their UTC instant.
package forecast

import (
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
)

// Metadata keys and defaults.
const (
	KeyMode     = "forecastMode"
	KeyLeadTime = "forecastLeadTime"
	KeyWeeks    = "forecastWeeks"
	KeyMaxError = "forecastMaxError"
	KeyTimezone = "forecastTimezone"

	DefaultLeadTime = 5 * time.Minute
	DefaultWeeks    = 4
	DefaultMaxError = 0.5
	// MinWeeks is the history depth below which the forecast is silent.
	MinWeeks = 2
)

// Config is the forecast part of one ScaledObject's trigger metadata.
type Config struct {
	// Mode is decide.ForecastDryRun or decide.ForecastEnabled (a disabled
	// forecast has no Config).
	Mode string
	// LeadTime: at t the forecast asks for the demand expected at t+LeadTime.
	LeadTime time.Duration
	// Weeks is the history kept and used (the retention).
	Weeks int
	// MaxError is last week's relative over-forecast (ForecastError.Over)
	// above which the forecast backs off.
	MaxError float64
	// Zone places the slots of the week: forecastTimezone, else the
	// calendar's calendarTimezone, else UTC.
	Zone *time.Location
	// Broker holds the history (the Celery broker of the same metadata).
	Broker celery.Broker
	// TasksPerReplica is the celery component's divisor, by which the
	// recorder turns task counts into demand.
	TasksPerReplica float64
}

// Params returns the estimator's parameters of c.
func (c *Config) Params() Params {
	return Params{Weeks: c.Weeks, LeadTime: c.LeadTime, MaxError: c.MaxError, MinWeeks: MinWeeks, Zone: c.Zone}
}

// Keys returns every metadata key ParseConfig reads.
func Keys() []string { return []string{KeyMode, KeyLeadTime, KeyWeeks, KeyMaxError, KeyTimezone} }

// ParseConfig reads the forecast keys. It returns (nil, nil) when the mode
// is disabled (the default). cel is the same metadata's Celery config: the
// history lives in its broker, so an enabled forecast needs one, except in
// a replay (meta.Map.Replay), whose history is the trace's. calZone is
// the calendar's zone (nil without a calendar), forecastTimezone's default.
func ParseConfig(m *meta.Map, cel *celery.Config, calZone *time.Location) (*Config, error) {
	mode := strings.ToLower(m.String(KeyMode, decide.ForecastDisabled))
	c := &Config{Mode: mode}
	var err error
	if c.LeadTime, err = m.Duration(KeyLeadTime, DefaultLeadTime, true); err != nil {
		return nil, err
	}
	if c.LeadTime > 24*time.Hour {
		return nil, &meta.Error{Key: KeyLeadTime, Value: m.String(KeyLeadTime, ""), Allowed: "at most 24h"}
	}
	if c.Weeks, err = m.Int(KeyWeeks, DefaultWeeks, MinWeeks, 26); err != nil {
		return nil, err
	}
	if c.MaxError, err = m.Float(KeyMaxError, DefaultMaxError, 0, 100); err != nil {
		return nil, err
	}
	c.Zone = time.UTC
	if calZone != nil {
		c.Zone = calZone
	}
	if tz, ok := m.Lookup(KeyTimezone); ok {
		if c.Zone, err = ical.LoadZone(tz); err != nil {
			return nil, &meta.Error{Key: KeyTimezone, Value: tz, Allowed: "an IANA time zone such as Europe/Berlin (or a Windows zone name such as W. Europe Standard Time)"}
		}
	}
	switch mode {
	case decide.ForecastDisabled:
		return nil, nil
	case decide.ForecastDryRun, decide.ForecastEnabled:
	default:
		// YAML turns on/off/yes/no into booleans: say so.
		return nil, &meta.Error{Key: KeyMode, Value: m.String(KeyMode, ""),
			Allowed: "disabled, dry-run or enabled (quote them in YAML; true/false are not modes)"}
	}
	if cel == nil && !m.Replay() {
		return nil, &meta.Error{Key: KeyMode, Value: mode,
			Allowed: "needs brokerURL (or brokerURLFromEnv): the forecast's history is kept in the Celery broker"}
	}
	if cel != nil {
		c.Broker, c.TasksPerReplica = cel.Broker, cel.TasksPerReplica
	}
	return c, nil
}
