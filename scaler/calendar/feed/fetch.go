package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/ical"
)

// Refresh bounds: a feed is re-read every DefaultRefresh unless it asks
// otherwise, never more often than MinRefresh.
const (
	DefaultRefresh = 5 * time.Minute
	MinRefresh     = time.Minute
	MaxRefresh     = 24 * time.Hour
)

// FetchOnce downloads and parses the feed once, for `check` and
// `calendar`. A nil client means one built by NewHTTPClient(l).
func FetchOnce(ctx context.Context, c *calendar.Config, l calendar.Limits, client *http.Client) (*calendar.Feed, error) {
	if c == nil || c.URL.IsZero() {
		return nil, errors.New("calendar: no calendarURL")
	}
	if client == nil {
		var err error
		if client, err = NewHTTPClient(l); err != nil {
			return nil, err
		}
	}
	return fetch(ctx, c.URL, nil, l, client, time.Now)
}

// fetch does one conditional GET. With prev, a 304 returns a copy of prev
// marked validated now.
func fetch(ctx context.Context, u calendar.FeedURL, prev *calendar.Feed, l calendar.Limits, client *http.Client, now func() time.Time) (*calendar.Feed, error) {
	l = l.WithDefaults()
	red := u.Redacted()
	ctx, cancel := context.WithTimeout(ctx, l.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Raw(), nil)
	if err != nil {
		return nil, fmt.Errorf("calendar: fetch %s: bad request", red)
	}
	req.Header.Set("Accept", "text/calendar, */*;q=0.5")
	req.Header.Set("User-Agent", "montage-scaler")
	if prev != nil {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	// A hang says what did not answer, and the limit that passed.
	hung := func(what string, err error) error {
		return fmt.Errorf("calendar: fetch %s: %s from %s within --calendar-fetch-timeout %s: %w", red, what, u.Host(), l.FetchTimeout, stripURL(err))
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, hung("no answer", err)
		}
		return nil, fmt.Errorf("calendar: fetch %s: %w", red, stripURL(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && prev != nil:
		f := *prev
		f.ValidatedAt = now()
		if et := resp.Header.Get("ETag"); et != "" {
			f.ETag = et
		}
		return &f, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("calendar: fetch %s: HTTP status %d", red, resp.StatusCode)
	}
	if resp.ContentLength > l.MaxBytes {
		return nil, fmt.Errorf("calendar: fetch %s: body of %d bytes exceeds the limit of %d (--calendar-max-bytes)", red, resp.ContentLength, l.MaxBytes)
	}
	// Reading through a limit also bounds a compressed body's expansion.
	data, err := io.ReadAll(io.LimitReader(resp.Body, l.MaxBytes+1))
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, hung(fmt.Sprintf("no whole body (%d bytes read)", len(data)), err)
		}
		return nil, fmt.Errorf("calendar: fetch %s: read body: %w", red, stripURL(err))
	}
	if int64(len(data)) > l.MaxBytes {
		return nil, fmt.Errorf("calendar: fetch %s: body exceeds the limit of %d bytes (--calendar-max-bytes)", red, l.MaxBytes)
	}
	cal, err := ical.Parse(data, l.ICal())
	if err != nil {
		return nil, fmt.Errorf("calendar: parse %s: %w", red, withFlag(err))
	}
	t := now()
	return &calendar.Feed{
		URL:          red,
		Calendar:     cal,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		FetchedAt:    t,
		ValidatedAt:  t,
	}, nil
}

// stripURL drops the request URL that net/http puts in its errors: it
// holds the feed's secret token.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// refreshFor is the pause after a good fetch of f.
func refreshFor(f *calendar.Feed) time.Duration {
	if f == nil || f.Calendar == nil || f.Calendar.RefreshInterval == 0 {
		return DefaultRefresh
	}
	return min(max(f.Calendar.RefreshInterval, MinRefresh), MaxRefresh)
}

// withFlag adds to an ical limit error the serve flag that sets the limit.
func withFlag(err error) error {
	var flag string
	switch {
	case errors.Is(err, ical.ErrTooLarge):
		flag = "--calendar-max-bytes"
	case errors.Is(err, ical.ErrTooManyEvents):
		flag = "--calendar-max-events"
	default:
		return err
	}
	return fmt.Errorf("%w (%s)", err, flag)
}
