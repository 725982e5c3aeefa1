package calendar

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
)

func TestRefreshFollowsTheFeedsInterval(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("ical", "testdata", "nextcloud.ics"))
	if err != nil {
		t.Fatal(err)
	}
	nextcloud, err := ical.Parse(data, ical.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cal  *ical.Calendar
		want time.Duration
	}{
		{"Nextcloud's REFRESH-INTERVAL of four hours is kept", nextcloud, 4 * time.Hour},
		{"a feed that does not say is read every five minutes", &ical.Calendar{}, DefaultRefresh},
		{"a feed asking for seconds is read once a minute", &ical.Calendar{RefreshInterval: 10 * time.Second}, MinRefresh},
		{"a feed asking for a week is read daily", &ical.Calendar{RefreshInterval: 7 * 24 * time.Hour}, MaxRefresh},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := refreshFor(&Feed{Calendar: tc.cal}); got != tc.want {
				t.Errorf("refreshFor = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLimitErrorsNameTheFlagThatRaisesIt(t *testing.T) {
	t.Run("too many events names --calendar-max-events and the redacted feed", func(t *testing.T) {
		fs := newFeedServer(t, googleBody(t))
		l := fs.allowOnly()
		l.MaxEvents = 3
		_, err := FetchOnce(t.Context(), &Config{URL: fs.url(t)}, l, nil)
		want := "calendar: parse " + fs.srv.URL + "/xxxxx/xxxxx/xxxxx/xxxxx/basic.ics: ical: calendar exceeds the event limit: more than 3 events (--calendar-max-events)"
		if !errors.Is(err, ical.ErrTooManyEvents) || err.Error() != want {
			t.Errorf("err =\n %v\nwant\n %s", err, want)
		}
		noSecret(t, err)
	})
}
