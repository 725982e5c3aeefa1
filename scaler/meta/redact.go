package meta

import (
	"net/url"
	"strings"
)

func redactIf(v string, secret bool) string {
	if secret {
		return Redact(v)
	}
	return v
}

// Redact hides what may be a credential in a URL-valued metadata value
// (brokerURL, prometheusURL, metricsURLs, calendarURL), whatever its scheme
// and whether or not it is otherwise valid: the userinfo password (and a
// user name that looks like a token), query values whose name or value
// looks secret, path segments that look like tokens (a calendar's secret
// address, a token in a Prometheus path), an opaque part and a fragment. A
// value that does not parse as a URL with a scheme is hidden whole. The
// result is clipped (see Clip).
func Redact(v string) string { return redact(v, false) }

// RedactFeed is Redact for a calendar feed's address (calendarURL), where
// the whole path may be the secret and need not look like one: a
// Nextcloud share token is letters only, a Google address is an account
// and a private-… token. Every path segment but the file name (the last
// segment, when it has an extension and does not itself look secret, as
// basic.ics) is hidden, and so are the user name, every query value and
// the fragment.
func RedactFeed(v string) string { return redact(v, true) }

func redact(v string, feed bool) string {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || u.Scheme == "" {
		return "<redacted>"
	}
	if u.Opaque != "" && (feed || LooksSecret(u.Opaque)) {
		return Clip(u.Scheme+":<redacted>", clipValue) // user:pass@host without the //
	}
	if u.User != nil {
		name := u.User.Username()
		if feed || LooksSecret(name) {
			name = "xxxxx"
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(name, "xxxxx")
		} else {
			u.User = url.User(name)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			for i, qv := range vs {
				if feed || secretName(k) || LooksSecret(qv) {
					vs[i] = "xxxxx"
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	segs := strings.Split(u.Path, "/")
	for i, s := range segs {
		last := i == len(segs)-1
		if LooksSecret(s) || (feed && s != "" && !(last && isFileName(s))) {
			segs[i] = "xxxxx"
		}
	}
	u.Path, u.RawPath = strings.Join(segs, "/"), ""
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = "xxxxx", ""
	}
	return Clip(u.String(), clipValue)
}

// isFileName reports whether a path segment is a file name: a name and an
// extension of one to eight letters or digits (basic.ics, calendar.ics).
func isFileName(s string) bool {
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 || len(s)-dot-1 < 1 || len(s)-dot-1 > 8 {
		return false
	}
	for _, r := range s[dot+1:] {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// URLSecrets returns the parts of a URL that Redact hides — the password,
// a user name, path segments and query values that look secret — so that
// text an upstream sends back (an error page that echoes the request
// path) can be scrubbed of them with Scrub.
func URLSecrets(v string) []string {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
		if LooksSecret(u.User.Username()) {
			out = append(out, u.User.Username())
		}
	}
	for k, vs := range u.Query() {
		for _, qv := range vs {
			if secretName(k) || LooksSecret(qv) {
				out = append(out, qv)
			}
		}
	}
	for s := range strings.SplitSeq(u.Path, "/") {
		if LooksSecret(s) {
			out = append(out, s, url.PathEscape(s))
		}
	}
	if u.Opaque != "" && LooksSecret(u.Opaque) {
		out = append(out, u.Opaque)
	}
	return out
}

// minScrubbed is the shortest secret Scrub replaces: shorter ones would
// mangle ordinary words.
const minScrubbed = 6

// Scrub replaces every occurrence of each secret in s with "xxxxx".
func Scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minScrubbed {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// secretName reports whether a query parameter's name says it holds a
// credential.
func secretName(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "token", "secret", "key", "auth", "sig", "cred"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// LooksSecret reports whether a path segment, query value or user name may
// be a credential: a private-… token, an e-mail address, anything 24 bytes
// or longer, or 12 or longer with a digit (Google's, Outlook's and Apple's
// calendar ids, API tokens).
func LooksSecret(s string) bool {
	if s == "" {
		return false
	}
	ls := strings.ToLower(s)
	if strings.Contains(ls, "private") || strings.Contains(ls, "secret") || strings.Contains(ls, "token") ||
		strings.Contains(ls, "@") || strings.Contains(ls, "%40") || len(s) >= 24 {
		return true
	}
	return len(s) >= 12 && strings.ContainsAny(s, "0123456789")
}
