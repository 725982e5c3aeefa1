package feed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/poll"
)

const secretToken = "private-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

// feedServer is a real HTTP server on loopback whose behaviour a test
// switches between modes.
type feedServer struct {
	srv      *httptest.Server
	body     []byte
	mode     atomic.Value // string
	hits     atomic.Int64
	started  chan struct{} // "slow": a request has started
	release  chan struct{} // "slow": let it finish
	redirect atomic.Value  // string, for mode "redirect"

	mu       sync.Mutex
	etag     string // "" means "v1"; setBody changes it
	lastINM  string
	lastIMS  string
	lastPath string
}

func newFeedServer(t *testing.T, body []byte) *feedServer {
	t.Helper()
	fs := &feedServer{body: body, started: make(chan struct{}, 16), release: make(chan struct{})}
	fs.mode.Store("ok")
	fs.redirect.Store("")
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.srv.Close)
	t.Cleanup(func() {
		select {
		case <-fs.release:
		default:
			close(fs.release)
		}
	})
	return fs
}

func (fs *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.hits.Add(1)
	fs.mu.Lock()
	fs.lastINM, fs.lastIMS, fs.lastPath = r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since"), r.URL.Path
	etag, body := `"v1"`, fs.body
	if fs.etag != "" {
		etag = fs.etag
	}
	fs.mu.Unlock()
	switch fs.mode.Load().(string) {
	case "ok":
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", "Wed, 19 Mar 2025 10:00:00 GMT")
		w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
		w.Write(body)
	case "500":
		http.Error(w, "backend down", http.StatusInternalServerError)
	case "invalid":
		w.Write([]byte("<html><body>Sign in to continue</body></html>"))
	case "huge", "huge-chunked":
		if fs.mode.Load() == "huge" {
			w.Header().Set("Content-Length", fmt.Sprint(50<<20))
		}
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = 'X'
		}
		w.Write([]byte("BEGIN:VCALENDAR\r\nX-PAD:"))
		for range 50 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case "slow":
		w.Header().Set("Content-Type", "text/calendar")
		w.WriteHeader(http.StatusOK)
		w.Write(body[:10])
		w.(http.Flusher).Flush()
		fs.started <- struct{}{}
		select {
		case <-fs.release:
		case <-r.Context().Done():
		}
	case "redirect":
		http.Redirect(w, r, fs.redirect.Load().(string), http.StatusFound)
	}
}

// setBody edits the feed: a new body under a new ETag.
func (fs *feedServer) setBody(b []byte) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.body, fs.etag = b, fmt.Sprintf(`"v%d"`, len(b))
}

func (fs *feedServer) url(t *testing.T) calendar.FeedURL {
	t.Helper()
	u, err := calendar.ParseFeedURL(fs.srv.URL + "/calendar/ical/creator%40example.com/" + secretToken + "/basic.ics")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// allowOnly lets the fetcher reach exactly this server.
func (fs *feedServer) allowOnly() calendar.Limits {
	l := calendar.DefaultLimits()
	l.AllowHosts = []string{strings.TrimPrefix(fs.srv.URL, "http://")}
	return l
}

func googleBody(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ical", "testdata", "google.ics"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func noSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && (strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), "creator")) {
		t.Errorf("error leaks the feed's secret: %v", err)
	}
}

func TestFetchOnceReadsAFeedAndRedactsItsURL(t *testing.T) {
	fs := newFeedServer(t, googleBody(t))
	u := fs.url(t)
	f, err := FetchOnce(t.Context(), &calendar.Config{URL: u}, fs.allowOnly(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantURL := fs.srv.URL + "/xxxxx/xxxxx/xxxxx/xxxxx/basic.ics"
	if f.URL != wantURL || f.ETag != `"v1"` || f.LastModified != "Wed, 19 Mar 2025 10:00:00 GMT" || f.Calendar.Events != 7 {
		t.Errorf("feed = url %q etag %q lm %q events %d; want url %q", f.URL, f.ETag, f.LastModified, f.Calendar.Events, wantURL)
	}
	if got := fmt.Sprint(u); got != wantURL {
		t.Errorf("FeedURL prints %q, want %q", got, wantURL)
	}
}

func TestFetchFailuresAreClearErrorsWithoutTheSecret(t *testing.T) {
	tests := []struct {
		name  string
		mode  string
		want  string
		limit func(*calendar.Limits)
	}{
		{name: "a server error names the status", mode: "500", want: "HTTP status 500"},
		{name: "a page that is not iCalendar is refused", mode: "invalid", want: "not valid iCalendar"},
		{name: "a 50 MiB body with Content-Length is refused before reading", mode: "huge", want: "body of 52428800 bytes exceeds the limit of 5242880"},
		{name: "a 50 MiB chunked body is cut at the limit", mode: "huge-chunked", want: "body exceeds the limit of 5242880 bytes"},
		{name: "a slow body runs into the fetch timeout, which is named", mode: "slow", want: "basic.ics: no whole body (10 bytes read) from 127.0.0.1:",
			limit: func(l *calendar.Limits) { l.FetchTimeout = 300 * time.Millisecond }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFeedServer(t, googleBody(t))
			fs.mode.Store(tc.mode)
			l := fs.allowOnly()
			if tc.limit != nil {
				tc.limit(&l)
			}
			f, err := FetchOnce(t.Context(), &calendar.Config{URL: fs.url(t)}, l, nil)
			if err == nil || f != nil {
				t.Fatalf("FetchOnce = %v, %v; want an error", f, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.mode == "slow" && !strings.Contains(err.Error(), " within --calendar-fetch-timeout 300ms: context deadline exceeded") {
				t.Errorf("error %q does not name the timeout", err)
			}
			if !strings.Contains(err.Error(), "/xxxxx/xxxxx/xxxxx/xxxxx/basic.ics") {
				t.Errorf("error %q does not name the redacted feed", err)
			}
			noSecret(t, err)
		})
	}
}

func TestNetworkPolicyRefusesPrivateAddresses(t *testing.T) {
	fs := newFeedServer(t, googleBody(t))
	other := newFeedServer(t, googleBody(t))
	hostPort := strings.TrimPrefix(fs.srv.URL, "http://")
	_, port, _ := net.SplitHostPort(hostPort)

	tests := []struct {
		name     string
		url      string
		limits   func(*calendar.Limits)
		redirect string
		wantErr  string
	}{
		{name: "loopback is refused by default", url: fs.srv.URL + "/a.ics",
			wantErr: "refused address: 127.0.0.1 is a loopback address, not dialled"},
		{name: "the name localhost is refused on the address it resolves to", url: "http://localhost:" + port + "/a.ics",
			wantErr: "refused address: localhost resolves to loopback address 127.0.0.1"},
		{name: "a redirect to another loopback port is refused", url: fs.srv.URL + "/a.ics",
			limits: func(l *calendar.Limits) { l.AllowHosts = []string{hostPort} }, redirect: other.srv.URL + "/b.ics",
			wantErr: "redirect: refused address: 127.0.0.1 is a loopback address"},
		{name: "a redirect to a name of another loopback port is refused", url: fs.srv.URL + "/a.ics",
			limits: func(l *calendar.Limits) { l.AllowHosts = []string{hostPort} }, redirect: strings.Replace(other.srv.URL, "127.0.0.1", "localhost", 1) + "/b.ics",
			wantErr: "refused address: localhost"},
		{name: "a redirect to cloud metadata is refused", url: fs.srv.URL + "/a.ics",
			limits: func(l *calendar.Limits) { l.AllowHosts = []string{hostPort} }, redirect: "http://169.254.169.254/latest/meta-data/",
			wantErr: "refused address: 169.254.169.254 is a cloud-metadata address"},
		{name: "allow-private does not open cloud metadata", url: fs.srv.URL + "/a.ics",
			limits: func(l *calendar.Limits) { l.AllowPrivate = true }, redirect: "http://[::ffff:169.254.169.254]/",
			wantErr: "refused address: 169.254.169.254 is a cloud-metadata address"},
		{name: "a redirect to another scheme is refused", url: fs.srv.URL + "/a.ics",
			limits: func(l *calendar.Limits) { l.AllowHosts = []string{hostPort} }, redirect: "file:///etc/passwd",
			wantErr: `redirect to scheme "file" refused`},
		{name: "a CIDR allows the loopback server", url: fs.srv.URL + "/a.ics",
			limits: func(l *calendar.Limits) { l.AllowHosts = []string{"127.0.0.0/8"} }},
		{name: "allow-private allows the loopback server", url: fs.srv.URL + "/a.ics",
			limits: func(l *calendar.Limits) { l.AllowPrivate = true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.redirect != "" {
				fs.mode.Store("redirect")
				fs.redirect.Store(tc.redirect)
			} else {
				fs.mode.Store("ok")
			}
			other.hits.Store(0)
			l := calendar.DefaultLimits()
			if tc.limits != nil {
				tc.limits(&l)
			}
			u, err := calendar.ParseFeedURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			_, err = FetchOnce(t.Context(), &calendar.Config{URL: u}, l, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("FetchOnce: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrRefusedAddress) && !strings.Contains(err.Error(), "refused") {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
			if n := other.hits.Load(); n != 0 {
				t.Errorf("the refused server got %d requests", n)
			}
		})
	}
}

func TestDialTimeCheckCatchesNamesThatResolveToLoopback(t *testing.T) {
	// A name other than "localhost" that the resolver maps to loopback
	// stands in for a rebinding DNS answer: only the dial-time check sees it.
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no hostname")
	}
	addrs, err := net.LookupHost(host)
	if err != nil || len(addrs) == 0 || !net.ParseIP(addrs[0]).IsLoopback() {
		t.Skipf("hostname %q does not resolve to loopback here", host)
	}
	fs := newFeedServer(t, googleBody(t))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(fs.srv.URL, "http://"))
	u, err := calendar.ParseFeedURL("http://" + host + ":" + port + "/a.ics")
	if err != nil {
		t.Fatal(err)
	}
	_, err = FetchOnce(t.Context(), &calendar.Config{URL: u}, calendar.DefaultLimits(), nil)
	if !errors.Is(err, ErrRefusedAddress) {
		t.Fatalf("err = %v, want ErrRefusedAddress", err)
	}
	if fs.hits.Load() != 0 {
		t.Errorf("the server got %d requests", fs.hits.Load())
	}
	if err := CheckURL(t.Context(), u, calendar.DefaultLimits()); !errors.Is(err, ErrRefusedAddress) {
		t.Errorf("CheckURL = %v, want ErrRefusedAddress", err)
	}
}

func TestHubSharesOneFetchLoopAndKeepsTheLastGoodCopy(t *testing.T) {
	fs := newFeedServer(t, googleBody(t))
	l := fs.allowOnly()
	l.FetchTimeout = 2 * time.Second
	var clock atomic.Int64
	clock.Store(ts(t, "2025-03-25T12:00:00Z").UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	h := NewHub(HubOptions{Now: now, Limits: l})
	t.Cleanup(h.Close)

	c := &calendar.Config{URL: fs.url(t), Timezone: time.UTC}
	w1 := h.Watch(c)
	w2 := h.Watch(&calendar.Config{URL: fs.url(t), Timezone: time.UTC})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := w1.First(ctx)
	if err != nil || s.Err != nil || s.Value == nil {
		t.Fatalf("first fetch: %v %+v", err, s)
	}
	if _, err := w2.First(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fs.hits.Load(); n != 1 {
		t.Errorf("two watches of one URL made %d requests, want 1", n)
	}
	good := s.Value

	// A refresh the server answers 304: same events, validated again.
	clock.Add(int64(5 * time.Minute))
	s = refresh(t, ctx, w1)
	fs.mu.Lock()
	inm := fs.lastINM
	fs.mu.Unlock()
	if inm != `"v1"` || s.Err != nil || s.Value == good || s.Value.FetchedAt != good.FetchedAt || !s.Value.ValidatedAt.Equal(now()) {
		t.Errorf("after 304: If-None-Match %q, err %v, fetched %s validated %s", inm, s.Err, s.Value.FetchedAt, s.Value.ValidatedAt)
	}
	good = s.Value

	failures := []string{"500", "invalid", "huge-chunked"}
	for _, mode := range failures {
		fs.mode.Store(mode)
		clock.Add(int64(time.Minute))
		s = refresh(t, ctx, w1)
		if s.Err == nil || s.Value != good {
			t.Errorf("mode %s: err %v, value kept %v", mode, s.Err, s.Value == good)
		}
		noSecret(t, s.Err)
	}
	if age := w2.Latest().Value.Age(now()); age != 3*time.Minute {
		t.Errorf("age = %s; want 3m", age)
	}
	st := h.Status()
	if len(st) != 1 || st[0].Age != 3*time.Minute || !st[0].Known || st[0].Err == nil || strings.Contains(st[0].URL, secretToken) {
		t.Errorf("status = %+v", st)
	}

	// While a slow fetch hangs, Latest answers at once from the good copy.
	fs.mode.Store("slow")
	w1.Poke()
	select {
	case <-fs.started:
	case <-ctx.Done():
		t.Fatal("slow request never started")
	}
	if s := w2.Latest(); s.Value != good {
		t.Errorf("Latest during a slow fetch: value kept %v", s.Value == good)
	}
	close(fs.release)
	w1.Close()
	w2.Close()
	if h.hub.Len() != 0 {
		t.Errorf("%d fetch loops left after the last watch closed", h.hub.Len())
	}
}

// refresh pokes the watch's loop and waits for that attempt to finish.
func refresh(t *testing.T, ctx context.Context, w *poll.View[*calendar.Feed]) (s poll.Snapshot[*calendar.Feed]) {
	t.Helper()
	before := w.Latest().Attempts
	for {
		ch := w.Changed()
		if s = w.Latest(); s.Attempts > before {
			return s
		}
		w.Poke()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("refresh did not finish")
		}
	}
}

func TestRedactedURLs(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a Google secret address hides the account and the token",
			"https://calendar.google.com/calendar/ical/creator%40gmail.com/private-0123456789abcdef0123456789abcdef/basic.ics",
			"https://calendar.google.com/xxxxx/xxxxx/xxxxx/xxxxx/basic.ics"},
		{"an Outlook published calendar hides its ids",
			"https://outlook.office365.com/owa/calendar/1f2e3d4c5b6a@example.com/9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b12345/calendar.ics",
			"https://outlook.office365.com/xxxxx/xxxxx/xxxxx/xxxxx/calendar.ics"},
		{"a Nextcloud public link hides its token of letters and its query",
			"https://cloud.example.org/remote.php/dav/public-calendars/kRXDqcCzfcZbYjSj?export",
			"https://cloud.example.org/xxxxx/xxxxx/xxxxx/xxxxx?export=xxxxx"},
		{"webcal becomes https and user info is hidden",
			"webcal://me:hunter2@p52-caldav.icloud.com/published/2/MTIzNDU2Nzg5MDEyMzQ1Njc4OTBhYmNkZWZnaGlq",
			"https://xxxxx:xxxxx@p52-caldav.icloud.com/xxxxx/xxxxx/xxxxx"},
		{"a file name that looks secret is hidden too",
			"https://cal.example.com/feeds/0123456789abcdef0123.ics",
			"https://cal.example.com/xxxxx/xxxxx"},
		{"a feed at the root keeps its file name",
			"https://cal.example.com/basic.ics",
			"https://cal.example.com/basic.ics"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := calendar.ParseFeedURL(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Redacted(); got != tc.want {
				t.Errorf("Redacted() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRefreshFollowsTheFeedsInterval(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "ical", "testdata", "nextcloud.ics"))
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
			if got := refreshFor(&calendar.Feed{Calendar: tc.cal}); got != tc.want {
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
		_, err := FetchOnce(t.Context(), &calendar.Config{URL: fs.url(t)}, l, nil)
		want := "calendar: parse " + fs.srv.URL + "/xxxxx/xxxxx/xxxxx/xxxxx/basic.ics: ical: calendar exceeds the event limit: more than 3 events (--calendar-max-events)"
		if !errors.Is(err, ical.ErrTooManyEvents) || err.Error() != want {
			t.Errorf("err =\n %v\nwant\n %s", err, want)
		}
		noSecret(t, err)
	})
}
