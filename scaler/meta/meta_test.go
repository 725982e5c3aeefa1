package meta

import (
	"strings"
	"testing"
	"time"
)

func TestRedactHidesCredentials(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://:s3cret@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"redis://user:s3cret@h:6379/0", "redis://user:xxxxx@h:6379/0"},
		{"redis://user@h:6379/0", "redis://user@h:6379/0"},
		{"https://p.example/api?token=s3cret&x=1", "https://p.example/api?token=xxxxx&x=1"},
		{"not a url at all s3cret", "<redacted>"},
		{"%zz://s3cret", "<redacted>"},
	}
	for _, tc := range tests {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
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
