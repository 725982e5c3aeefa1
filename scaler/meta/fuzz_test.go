package meta

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var alnum = regexp.MustCompile(`^[A-Za-z0-9]{8,}$`)

// FuzzRedact: whatever the value, Redact and Clip give valid UTF-8 of
// bounded length, and a URL's password never survives Redact (unless the
// same text is elsewhere in the value, in the clear).
func FuzzRedact(f *testing.F) {
	f.Add("redis://:s3cretPassw0rd@h:6379/0")
	f.Add("https://cal.example/calendar/ical/creator%40gmail.com/private-0a1b2c3d/basic.ics?token=abc")
	f.Add("ftp:///s3cr3tT0ken1234/x#frag")
	f.Add("user:pass@host")
	f.Add("https://cloud.example.org/remote.php/dav/public-calendars/kRXDqcCzfcZbYjSj?export")
	f.Add("\xff\xfe://\x00")
	f.Fuzz(func(t *testing.T, v string) {
		r := Redact(v)
		if !utf8.ValidString(r) || len(r) > clipValue+40 {
			t.Fatalf("Redact(%q) = %q: not valid UTF-8 or too long", v, r)
		}
		if c := Clip(v, 50); !utf8.ValidString(c) || len(c) > 50+len("…(1234567890 bytes)") {
			t.Fatalf("Clip(%q) = %q", v, c)
		}
		// A feed's address keeps no path segment but its file name,
		// whatever the segment looks like.
		if u, err := url.Parse(strings.TrimSpace(v)); err == nil && u.Opaque == "" && u.RawPath == "" {
			segs := strings.Split(u.Path, "/")
			r := RedactFeed(v)
			for _, seg := range segs[:len(segs)-1] {
				if alnum.MatchString(seg) && strings.Count(v, seg) == 1 && strings.Contains(r, seg) {
					t.Fatalf("RedactFeed(%q) = %q shows the path segment %q", v, r, seg)
				}
			}
		}
		u, err := url.Parse(strings.TrimSpace(v))
		if err != nil || u.User == nil {
			return
		}
		p, ok := u.User.Password()
		if !ok || !alnum.MatchString(p) || strings.Count(v, p) > 1 || strings.Contains(u.Scheme+u.Host, p) {
			return
		}
		if strings.Contains(r, p) {
			t.Fatalf("Redact(%q) = %q shows the password", v, r)
		}
		if s := Scrub("echo "+p, URLSecrets(v)); strings.Contains(s, p) {
			t.Fatalf("Scrub left the password: %q", s)
		}
	})
}
