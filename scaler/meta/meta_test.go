package meta

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRedactHidesCredentials(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://:s3cret@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"redis://user:s3cret@h:6379/0", "redis://user:xxxxx@h:6379/0"},
		{"redis://user@h:6379/0", "redis://user@h:6379/0"},
		{"https://p.example/api?token=s3cret&x=1", "https://p.example/api?token=xxxxx&x=1"},
		{"not a url at all s3cret", "<redacted>"},
		{"%zz://s3cret", "<redacted>"},
		// Whatever the scheme, and with no host, a token in the path or
		// the query is hidden (a calendar's secret address, a Prometheus
		// behind a token in its path).
		{"ftp://cal.example/calendar/ical/private-0a1b2c3d/basic.ics", "ftp://cal.example/calendar/ical/xxxxx/basic.ics"},
		{"https:///s3cr3tT0ken1234/basic.ics", "https:///xxxxx/basic.ics"},
		{"http://prom:9090/t/s3cr3tT0ken1234/api?org=montage", "http://prom:9090/t/xxxxx/api?org=montage"},
		{"http://prom:9090/?x=s3cr3tT0ken1234", "http://prom:9090/?x=xxxxx"},
		{"https://ghp0123456789abcdef@git.example/x", "https://xxxxx@git.example/x"},
		{"https://h/x#s3cret", "https://h/x#xxxxx"},
		{"user:s3cret@host", "user:<redacted>"},
		{"h:6379", "h:6379"},
	}
	for _, tc := range tests {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactFeedHidesEveryPathSegmentButTheFileName(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a Nextcloud share token of letters only", "https://cloud.example.org/remote.php/dav/public-calendars/kRXDqcCzfcZbYjSj?export",
			"https://cloud.example.org/xxxxx/xxxxx/xxxxx/xxxxx?export=xxxxx"},
		{"a Google secret address keeps only basic.ics", "https://calendar.google.com/calendar/ical/me%40gmail.com/private-0a1b2c3d/basic.ics",
			"https://calendar.google.com/xxxxx/xxxxx/xxxxx/xxxxx/basic.ics"},
		{"a file name that looks secret goes too", "https://cal.example/f/private-abc.ics", "https://cal.example/xxxxx/xxxxx"},
		{"a last segment without an extension is no file name", "http://cal.example/published/2/abcdefgh", "http://cal.example/xxxxx/xxxxx/xxxxx"},
		{"the user name, every query value and the fragment go", "ftp://me:pw@cal.example/x.ics?lang=en#top", "ftp://xxxxx:xxxxx@cal.example/x.ics?lang=xxxxx#xxxxx"},
		{"an opaque address goes whole", "webcal:cal.example/abc", "webcal:<redacted>"},
		{"a value that is no URL goes whole", "cal.example/kRXDqcCzfcZbYjSj", "<redacted>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedactFeed(tc.in); got != tc.want {
				t.Errorf("RedactFeed(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDurationAcceptsGoSyntaxAndBareSeconds(t *testing.T) {
	m := New(map[string]string{"a": "90s", "b": "120", "c": "1.5", "d": "-1s", "e": "0", "f": "soon", "g": "1e300"})
	for key, want := range map[string]time.Duration{"a": 90 * time.Second, "b": 2 * time.Minute, "c": 1500 * time.Millisecond, "missing": time.Hour} {
		got, err := m.Duration(key, time.Hour, false)
		if err != nil || got != want {
			t.Errorf("Duration(%s) = %v, %v; want %v", key, got, err, want)
		}
	}
	for _, key := range []string{"d", "e", "f", "g"} {
		_, err := m.Duration(key, time.Hour, false)
		if err == nil || !IsError(err) || !strings.Contains(err.Error(), `metadata "`+key+`"`) {
			t.Errorf("Duration(%s) = %v, want an error naming the key", key, err)
		}
	}
	if d, err := m.Duration("e", time.Hour, true); err != nil || d != 0 {
		t.Errorf("zero allowed: %v, %v", d, err)
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		md      map[string]string
		want    string
		found   bool
		wantErr string
	}{
		{"the plain key", map[string]string{"brokerURL": "redis://a"}, "redis://a", true, ""},
		{"under KEDA the FromEnv key holds the value", map[string]string{"brokerURLFromEnv": "redis://b"}, "redis://b", true, ""},
		{"both keys are an error", map[string]string{"brokerURL": "redis://:pw@a", "brokerURLFromEnv": "B"}, "", false,
			`metadata "brokerURL": bad value "redis://:xxxxx@a": set "brokerURL" or "brokerURLFromEnv", not both`},
		{"neither is not found", map[string]string{}, "", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, found, err := New(tc.md).FromEnv("brokerURL", true)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || v != tc.want || found != tc.found {
				t.Fatalf("got %q %t %v, want %q %t", v, found, err, tc.want, tc.found)
			}
		})
	}
}

func TestUnknownListsUnreadKeysButNotKEDAs(t *testing.T) {
	m := New(map[string]string{"queues": "a", "tasksPerReplca": "3", "scalerAddress": "s:9090", "unsafeSsl": "true"})
	m.List("queues", nil)
	if got := m.Unknown(); len(got) != 1 || got[0] != "tasksPerReplca" {
		t.Fatalf("Unknown = %q", got)
	}
}

func TestNumbersAndBools(t *testing.T) {
	m := New(map[string]string{"f": "2.5", "nan": "NaN", "inf": "+Inf", "i": "7", "big": "99", "b": "yes", "bad": "maybe"})
	if f, err := m.Float("f", 0, 0, 10); err != nil || f != 2.5 {
		t.Errorf("Float = %v %v", f, err)
	}
	for _, k := range []string{"nan", "inf"} {
		if _, err := m.Float(k, 0, 0, 10); err == nil {
			t.Errorf("Float(%s) accepted", k)
		}
	}
	if _, err := m.Int("big", 0, 0, 10); err == nil || err.Error() != `metadata "big": bad value "99": a whole number from 0 to 10` {
		t.Errorf("Int(big) = %v", err)
	}
	if b, err := m.Bool("b", false); err != nil || !b {
		t.Errorf("Bool = %v %v", b, err)
	}
	if _, err := m.Bool("bad", false); err == nil || err.Error() != `metadata "bad": bad value "maybe": true or false` {
		t.Errorf("Bool(bad) = %v", err)
	}
}

func TestObjectRefNeverSaysABareSlash(t *testing.T) {
	for _, tc := range []struct{ ns, name, want string }{
		{"prod", "montage", "prod/montage"}, {"", "montage", "montage"}, {"prod", "", "prod/(unnamed)"}, {"", "", "(unnamed)"},
	} {
		if got := ObjectRef(tc.ns, tc.name); got != tc.want {
			t.Errorf("ObjectRef(%q, %q) = %q, want %q", tc.ns, tc.name, got, tc.want)
		}
	}
}

func TestClipKeepsValidUTF8AndSaysTheLength(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc…(6 bytes)"},
		// A cut inside a multi-byte character moves back to its start.
		{"aé€x", 4, "aé…(7 bytes)"},
		{"a\xffb", 10, "a\ufffdb"},
		// U+FFFD takes three bytes: more than 2, so nothing is left.
		{"\xff\xfe\xfd\xfc", 2, "…(4 bytes)"},
		{"\xff\xfe\xfd\xfc", 3, "\ufffd…(4 bytes)"},
		// Invalid bytes inside the limit lengthen the text: cut again.
		{"ab\xffcd\xfe", 6, "ab\ufffdc…(6 bytes)"},
	}
	for _, tc := range tests {
		if got := Clip(tc.in, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// A megabyte value is echoed clipped, and bytes that are not UTF-8 never
// reach the message.
func TestErrorClipsTheValueAndIsValidUTF8(t *testing.T) {
	big := strings.Repeat("q", 1<<20)
	e := &Error{Key: "queues", Value: big, Allowed: "comma-separated Celery queue names"}
	got := e.Error()
	if len(got) > 400 || !strings.Contains(got, "(1048576 bytes)") || !strings.HasPrefix(got, `metadata "queues": bad value "qqq`) {
		t.Fatalf("error of %d bytes: %.300s", len(got), got)
	}
	e = &Error{Key: "k\xff" + strings.Repeat("k", 1000), Value: "v\xc3", Allowed: "x"}
	if got := e.Error(); !utf8.ValidString(got) || len(got) > 400 {
		t.Fatalf("error %q", got)
	}
}

func TestScrubRemovesAURLsSecretsFromEchoedText(t *testing.T) {
	raw := "https://u:pw0123456@prom.example/t/s3cr3tT0ken1234/api?token=abcdef&org=montage"
	secrets := URLSecrets(raw)
	echoed := "Cannot GET /t/s3cr3tT0ken1234/api?token=abcdef&org=montage (user u, pw0123456)"
	if got, want := Scrub(echoed, secrets), "Cannot GET /t/xxxxx/api?token=xxxxx&org=montage (user u, xxxxx)"; got != want {
		t.Fatalf("Scrub = %q, want %q (secrets %q)", got, want, secrets)
	}
}
