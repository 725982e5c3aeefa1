package calendar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/meta"
)

func TestParseConfig(t *testing.T) {
	t.Run("no calendar key means no calendar component", func(t *testing.T) {
		c, err := ParseConfig(meta.New(map[string]string{"queues": "celery"}))
		if c != nil || err != nil {
			t.Fatalf("ParseConfig = %+v, %v; want nil, nil", c, err)
		}
	})
	t.Run("defaults apply to a bare URL", func(t *testing.T) {
		c, err := ParseConfig(meta.New(map[string]string{"calendarURL": "webcal://p52-caldav.icloud.com/published/2/MTIzNDU2Nzg5MDEyMzQ1Njc4OTBh"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.URL.Redacted() != "https://p52-caldav.icloud.com/xxxxx/xxxxx/xxxxx" || c.Timezone != time.UTC ||
			c.LeadTime != 10*time.Minute || c.Hold != 5*time.Minute || c.DefaultReplicas != 4 || c.IncludeTransparent || c.MaxReplicas != nil {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("every key is read", func(t *testing.T) {
		c, err := ParseConfig(meta.New(map[string]string{
			"calendarURL": "https://cal.example.com/a.ics", "calendarTimezone": "W. Europe Standard Time",
			"calendarLeadTime": "30m", "calendarHold": "90", "calendarReplicas": "2.5", "calendarIncludeTransparent": "true",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Timezone.String() != "Europe/Berlin" || c.LeadTime != 30*time.Minute || c.Hold != 90*time.Second ||
			c.DefaultReplicas != 2.5 || !c.IncludeTransparent {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("the expansion options carry every setting", func(t *testing.T) {
		c, err := ParseConfig(meta.New(map[string]string{
			"calendarURL": "https://cal.example.com/a.ics", "calendarTimezone": "Europe/Berlin",
			"calendarLeadTime": "30m", "calendarHold": "90", "calendarReplicas": "2.5", "calendarIncludeTransparent": "true",
		}))
		if err != nil {
			t.Fatal(err)
		}
		maxR := 8.0
		c.MaxReplicas = &maxR
		want := ical.Options{Zone: c.Timezone, LeadTime: 30 * time.Minute, Hold: 90 * time.Second,
			DefaultReplicas: 2.5, IncludeTransparent: true, MaxReplicas: &maxR}
		if got := c.Expansion(); got != want {
			t.Errorf("Expansion() = %+v, want %+v", got, want)
		}
	})
	t.Run("the URL comes from calendarURLFromEnv, which holds the container variable's value", func(t *testing.T) {
		m := meta.New(map[string]string{"calendarURLFromEnv": "https://cal.example.com/private-0123456789abcdef/basic.ics"})
		c, err := ParseConfig(m)
		if err != nil {
			t.Fatal(err)
		}
		if c.URL.Redacted() != "https://cal.example.com/xxxxx/basic.ics" {
			t.Errorf("URL = %s", c.URL)
		}
	})

	bad := []struct {
		name string
		md   map[string]string
		want string
	}{
		{"a URL with another scheme is refused without showing its secret",
			map[string]string{"calendarURL": "ftp://u:secretpw@cal.example.com/x.ics"},
			`metadata "calendarURL": bad value "ftp://xxxxx:xxxxx@cal.example.com/x.ics": an http, https or webcal URL of an iCalendar feed`},
		{"a URL with another scheme hides every path segment but the file name, a token of letters too",
			map[string]string{"calendarURL": "ftp://cloud.example.org/remote.php/dav/public-calendars/kRXDqcCzfcZbYjSj?export"},
			`metadata "calendarURL": bad value "ftp://cloud.example.org/xxxxx/xxxxx/xxxxx/xxxxx?export=xxxxx": an http, https or webcal URL of an iCalendar feed`},
		{"both the URL and its FromEnv key are refused, the URL's path hidden",
			map[string]string{"calendarURL": "https://cloud.example.org/remote.php/dav/public-calendars/kRXDqcCzfcZbYjSj?export", "calendarURLFromEnv": "CAL"},
			`metadata "calendarURL": bad value "https://cloud.example.org/xxxxx/xxxxx/xxxxx/xxxxx?export=xxxxx": set "calendarURL" or "calendarURLFromEnv", not both`},
		{"both the URL and its FromEnv key are refused",
			map[string]string{"calendarURL": "https://a.example/x.ics", "calendarURLFromEnv": "CAL"},
			`metadata "calendarURL": bad value "https://a.example/x.ics": set "calendarURL" or "calendarURLFromEnv", not both`},
		{"calendar settings without a URL are refused",
			map[string]string{"calendarTimezone": "Europe/Berlin"},
			`metadata "calendarURL" is required`},
		{"an unknown zone is refused",
			map[string]string{"calendarURL": "https://a.example/x.ics", "calendarTimezone": "Mars/Olympus"},
			`metadata "calendarTimezone": bad value "Mars/Olympus": an IANA time zone such as Europe/Berlin (or a Windows zone name such as W. Europe Standard Time)`},
		{"the scaler's local zone is refused",
			map[string]string{"calendarURL": "https://a.example/x.ics", "calendarTimezone": "Local"},
			`metadata "calendarTimezone": bad value "Local": an IANA time zone such as Europe/Berlin (or a Windows zone name such as W. Europe Standard Time)`},
		{"a negative lead time is refused",
			map[string]string{"calendarURL": "https://a.example/x.ics", "calendarLeadTime": "-5m"},
			`metadata "calendarLeadTime": bad value "-5m": a Go duration such as 90s or 1h, or a bare number of seconds, not negative`},
		{"a hold over a week is refused",
			map[string]string{"calendarURL": "https://a.example/x.ics", "calendarHold": "200h"},
			`metadata "calendarHold": bad value "200h": at most 168h`},
		{"replicas that are not a number are refused",
			map[string]string{"calendarURL": "https://a.example/x.ics", "calendarReplicas": "many"},
			`metadata "calendarReplicas": bad value "many": a number from 0 to 10000`},
		{"a non-boolean transparency switch is refused",
			map[string]string{"calendarURL": "https://a.example/x.ics", "calendarIncludeTransparent": "sometimes"},
			`metadata "calendarIncludeTransparent": bad value "sometimes": true or false`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(meta.New(tc.md))
			if err == nil {
				t.Fatalf("ParseConfig = %+v, want an error", c)
			}
			var me *meta.Error
			if !errors.As(err, &me) {
				t.Errorf("error %T is not a *meta.Error", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error =\n %s\nwant\n %s", err, tc.want)
			}
		})
	}
}

func TestAFeedURLNeverPrintsItsSecret(t *testing.T) {
	c, err := ParseConfig(meta.New(map[string]string{"calendarURL": "https://calendar.google.com/calendar/ical/me%40gmail.com/private-0123456789abcdef/basic.ics"}))
	if err != nil {
		t.Fatal(err)
	}
	const want = "https://calendar.google.com/xxxxx/xxxxx/xxxxx/xxxxx/basic.ics"
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("watching", "feed", c.URL, "config", c)
	js, _ := json.Marshal(c)
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", c.URL), "%+v of the config": fmt.Sprintf("%+v", *c),
		"JSON": string(js), "slog JSON": logged.String(),
	} {
		if strings.Contains(s, "private-") || strings.Contains(s, "gmail") || !strings.Contains(s, want) {
			t.Errorf("%s: %s", name, s)
		}
	}
}
