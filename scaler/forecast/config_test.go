package forecast

import (
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
)

func TestParseConfig(t *testing.T) {
	const broker = "redis://:s3cret@redis:6379/0"
	tests := []struct {
		name    string
		md      map[string]string
		calZone string
		want    *Config // Broker not compared
		wantErr string
	}{
		{name: "without forecastMode the forecast is disabled", md: map[string]string{"brokerURL": broker}},
		{name: "disabled is no config even with other forecast keys", md: map[string]string{"brokerURL": broker, KeyMode: "disabled", KeyWeeks: "6"}},
		{name: "dry-run takes the defaults", md: map[string]string{"brokerURL": broker, KeyMode: "dry-run"},
			want: &Config{Mode: decide.ForecastDryRun, LeadTime: 5 * time.Minute, Weeks: 4, MaxError: 0.5}},
		{name: "enabled reads lead time, weeks and max error", md: map[string]string{"brokerURL": broker, KeyMode: "Enabled", KeyLeadTime: "10m", KeyWeeks: "6", KeyMaxError: "0.8"},
			want: &Config{Mode: decide.ForecastEnabled, LeadTime: 10 * time.Minute, Weeks: 6, MaxError: 0.8}},
		{name: "a YAML boolean is not a mode", md: map[string]string{"brokerURL": broker, KeyMode: "true"},
			wantErr: `metadata "forecastMode": bad value "true": disabled, dry-run or enabled (quote them in YAML; true/false are not modes)`},
		{name: "an enabled forecast needs a broker", md: map[string]string{KeyMode: "enabled", "calendarURL": "https://x/c.ics"},
			wantErr: `metadata "forecastMode": bad value "enabled": needs brokerURL (or brokerURLFromEnv): the forecast's history is kept in the Celery broker`},
		{name: "one week of retention is too short to ever forecast", md: map[string]string{"brokerURL": broker, KeyMode: "enabled", KeyWeeks: "1"},
			wantErr: `metadata "forecastWeeks": bad value "1": a whole number from 2 to 26`},
		{name: "a lead time over a day is refused", md: map[string]string{"brokerURL": broker, KeyMode: "enabled", KeyLeadTime: "25h"},
			wantErr: `metadata "forecastLeadTime": bad value "25h": at most 24h`},
		{name: "slots are in UTC without a zone", md: map[string]string{"brokerURL": broker, KeyMode: "dry-run"},
			want: &Config{Mode: decide.ForecastDryRun, LeadTime: 5 * time.Minute, Weeks: 4, MaxError: 0.5, Zone: time.UTC}},
		{name: "slots follow the calendar's zone by default", md: map[string]string{"brokerURL": broker, KeyMode: "dry-run"}, calZone: "America/New_York",
			want: &Config{Mode: decide.ForecastDryRun, LeadTime: 5 * time.Minute, Weeks: 4, MaxError: 0.5, Zone: zone(t, "America/New_York")}},
		{name: "forecastTimezone overrides the calendar's zone", md: map[string]string{"brokerURL": broker, KeyMode: "dry-run", KeyTimezone: "Europe/Berlin"}, calZone: "America/New_York",
			want: &Config{Mode: decide.ForecastDryRun, LeadTime: 5 * time.Minute, Weeks: 4, MaxError: 0.5, Zone: zone(t, "Europe/Berlin")}},
		{name: "a Windows zone name is understood", md: map[string]string{"brokerURL": broker, KeyMode: "dry-run", KeyTimezone: "W. Europe Standard Time"},
			want: &Config{Mode: decide.ForecastDryRun, LeadTime: 5 * time.Minute, Weeks: 4, MaxError: 0.5, Zone: zone(t, "Europe/Berlin")}},
		{name: "an unknown zone is refused", md: map[string]string{"brokerURL": broker, KeyMode: "enabled", KeyTimezone: "Europe/Atlantis"},
			wantErr: `metadata "forecastTimezone": bad value "Europe/Atlantis": an IANA time zone such as Europe/Berlin (or a Windows zone name such as W. Europe Standard Time)`},
		{name: "a negative max error is refused", md: map[string]string{"brokerURL": broker, KeyMode: "enabled", KeyMaxError: "-1"},
			wantErr: `metadata "forecastMaxError": bad value "-1": a number from 0 to 100`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := meta.New(tc.md)
			cel, err := celery.ParseConfig(m)
			if err != nil {
				t.Fatal(err)
			}
			var calZone *time.Location
			if tc.calZone != "" {
				calZone = zone(t, tc.calZone)
			}
			c, err := ParseConfig(m, cel, calZone)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !meta.IsError(err) {
					t.Fatalf("error %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c == nil) != (tc.want == nil) {
				t.Fatalf("config %+v, want %+v", c, tc.want)
			}
			if c == nil {
				return
			}
			if tc.want.Zone != nil && c.Zone.String() != tc.want.Zone.String() {
				t.Errorf("zone %s, want %s", c.Zone, tc.want.Zone)
			}
			if c.Mode != tc.want.Mode || c.LeadTime != tc.want.LeadTime || c.Weeks != tc.want.Weeks || c.MaxError != tc.want.MaxError {
				t.Errorf("config %+v, want %+v", c, tc.want)
			}
			if c.Broker.Key() != cel.Broker.Key() {
				t.Error("the history is not in the metadata's broker")
			}
		})
	}
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
