package celery

import (
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/meta"
)

const want = "; want a Celery broker URL: redis://[[user]:pass@]host[:port][/db], " +
	"rediss://…?ssl_cert_reqs=required|optional|none (or CERT_REQUIRED|CERT_OPTIONAL|CERT_NONE), " +
	"sentinel://h1:26379;sentinel://h2:26379/db with sentinelMaster, " +
	"or redis+socket:///path?virtual_host=N"

func TestParseBrokerURLAccepts(t *testing.T) {
	tests := []struct {
		name, raw, master string
		redacted          string
		db                int
	}{
		{"a plain URL defaults to localhost:6379 db 0", "redis://", "", "redis://localhost:6379/0", 0},
		{"a password alone is hidden", "redis://:s3cretpw@redis.example:6380/2", "", "redis://:xxxxx@redis.example:6380/2", 2},
		{"a user and password keep the user", "redis://montage:s3cretpw@10.0.0.5/7", "", "redis://montage:xxxxx@10.0.0.5:6379/7", 7},
		{"rediss keeps ssl_cert_reqs", "rediss://:pw12345@h:6380/0?ssl_cert_reqs=CERT_NONE", "", "rediss://:xxxxx@h:6380/0?ssl_cert_reqs=CERT_NONE", 0},
		{"rediss without ssl_cert_reqs verifies", "rediss://h", "", "rediss://h:6379/0", 0},
		{"virtual_host names the db", "redis://h?virtual_host=5", "", "redis://h:6379/5", 5},
		{"sentinels with a master", "sentinel://:pw@h1:26379;sentinel://:pw@h2/3", "mymaster", `sentinel://:xxxxx@h1:26379;sentinel://:xxxxx@h2:26379/3 (master "mymaster")`, 3},
		{"one sentinel", "sentinel://s1:26380", "m", `sentinel://s1:26380/0 (master "m")`, 0},
		{"a unix socket with virtual_host", "redis+socket:///run/redis.sock?virtual_host=4", "", "redis+socket:///run/redis.sock?virtual_host=4", 4},
		{"an IPv6 host", "redis://[::1]:7000/1", "", "redis://[::1]:7000/1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBrokerURL(tt.raw, tt.master)
			if err != nil {
				t.Fatalf("ParseBrokerURL(%q): %v", tt.raw, err)
			}
			if b.Redacted() != tt.redacted {
				t.Errorf("Redacted() = %q, want %q", b.Redacted(), tt.redacted)
			}
			if b.DB() != tt.db {
				t.Errorf("DB() = %d, want %d", b.DB(), tt.db)
			}
		})
	}
}

func TestParseBrokerURLErrors(t *testing.T) {
	tests := []struct {
		name, raw, master, err string
	}{
		{"an empty URL", "", "", `metadata "brokerURL": must not be empty` + want},
		{"an unknown scheme", "http://h", "", `metadata "brokerURL": bad value "http://h": scheme "http" is not supported` + want},
		{"a host:port without scheme", "h:6379", "", `metadata "brokerURL": bad value "h:6379": scheme "h" is not supported` + want},
		{"a db that is not a number, password hidden", "redis://:s3cretpw@h/x", "", `metadata "brokerURL": bad value "redis://:xxxxx@h/x": db must be a whole number from 0` + want},
		{"a port out of range", "redis://h:99999", "", `metadata "brokerURL": bad value "redis://h:99999": port must be a number from 1 to 65535` + want},
		{"an unknown option", "redis://h?foo=1", "", `metadata "brokerURL": bad value "redis://h?foo=1": option "foo" is not supported` + want},
		{"a TLS option on redis://", "redis://h?ssl_cert_reqs=CERT_NONE", "", `metadata "brokerURL": bad value "redis://h?ssl_cert_reqs=CERT_NONE": option "ssl_cert_reqs" needs rediss://` + want},
		{"a bad ssl_cert_reqs", "rediss://h?ssl_cert_reqs=MAYBE", "", `metadata "brokerURL": bad value "rediss://h?ssl_cert_reqs=MAYBE": ssl_cert_reqs "MAYBE" is not required|optional|none (or CERT_REQUIRED|CERT_OPTIONAL|CERT_NONE)` + want},
		{"two dbs", "redis://h/1?virtual_host=2", "", `metadata "brokerURL": bad value "redis://h/1?virtual_host=2": db given both in the path and as virtual_host` + want},
		{"a socket URL with a host", "redis+socket://h/x", "", `metadata "brokerURL": bad value "redis+socket://h/x": a socket URL has no host: redis+socket:///path/to/redis.sock` + want},
		{"sentinels without a master", "sentinel://h1;sentinel://h2", "", `metadata "sentinelMaster": required with a sentinel:// broker URL (Celery's master_name transport option)`},
		{"sentinels naming different dbs", "sentinel://h1/1;sentinel://h2/2", "m", `metadata "brokerURL": bad value "sentinel://h1/1;sentinel://h2/2": sentinel URLs name different dbs` + want},
		{"a redis URL in a sentinel list", "sentinel://h1;redis://:pw123456@h2", "m", `metadata "brokerURL": bad value "sentinel://h1;redis://:xxxxx@h2": sentinel URL 2 of 2 is not sentinel://host:port` + want},
		{"a master without sentinels", "redis://:pw@h/1", "m", `metadata "sentinelMaster": bad value "m": only allowed with a sentinel:// broker URL`},
		{"a URL that does not parse hides it all", "redis://:pw%zz@h", "", `metadata "brokerURL": bad value "<redacted>": not a URL` + want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBrokerURL(tt.raw, tt.master)
			if err == nil {
				t.Fatalf("ParseBrokerURL(%q) succeeded", tt.raw)
			}
			if err.Error() != tt.err {
				t.Errorf("error\n got %s\nwant %s", err, tt.err)
			}
			if !meta.IsError(err) {
				t.Errorf("%v is not a *meta.Error", err)
			}
		})
	}
}

func TestBrokerKeySeparatesConnectionsAndHidesThePassword(t *testing.T) {
	key := func(raw string) string {
		b, err := ParseBrokerURL(raw, "")
		if err != nil {
			t.Fatal(err)
		}
		return b.Key()
	}
	same := key("redis://:pw1secret@h:6379/1")
	if key("redis://:pw1secret@h/1") != same {
		t.Errorf("default port changes the key")
	}
	for _, other := range []string{"redis://:pw2secret@h/1", "redis://:pw1secret@h/2", "redis://:pw1secret@h2/1", "rediss://:pw1secret@h/1"} {
		if key(other) == same {
			t.Errorf("%s shares a key with redis://:pw1secret@h/1", other)
		}
	}
	if strings.Contains(same, "pw1secret") {
		t.Errorf("key %q holds the password", same)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		md   map[string]string
		want *Config
	}{
		{"no celery key at all is no config", map[string]string{"calendarURL": "https://x"}, nil},
		{"a broker alone takes every default", map[string]string{"brokerURL": "redis://h/1"}, &Config{
			Layout: DefaultLayout("celery"), TasksPerReplica: 5}},
		{"every key set", map[string]string{
			"brokerURLFromEnv": "redis://h/1", "queues": "video, thumbs,video", "tasksPerReplica": "2.5",
			"prioritySteps": "0,5", "prioritySeparator": `\x1f`, "keyPrefix": "montage:", "visibilityTimeout": "90",
			"acksLate": "false", "queueWaitTarget": "1m", "podStartupTime": "90s"}, &Config{
			Layout: Layout{Queues: []string{"thumbs", "video"}, PrioritySteps: []int{0, 5}, Separator: "\x1f",
				KeyPrefix: "montage:", VisibilityTimeout: 90 * time.Second, AcksLate: false, ShareFirstSeen: true},
			TasksPerReplica: 2.5, QueueWaitTarget: time.Minute, PodStartup: 90 * time.Second}},
		{"a bare number of seconds for the wait target", map[string]string{"brokerURL": "redis://h/1", "queueWaitTarget": "90"}, &Config{
			Layout: func() Layout { l := DefaultLayout("celery"); l.ShareFirstSeen = true; return l }(), TasksPerReplica: 5,
			QueueWaitTarget: 90 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig(meta.New(tt.md))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if tt.want == nil {
				if got != nil {
					t.Fatalf("got %+v, want nil", got)
				}
				return
			}
			if got.Broker.Redacted() != "redis://h:6379/1" {
				t.Errorf("broker %q", got.Broker.Redacted())
			}
			got.Broker = Broker{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		md   map[string]string
		err  string
	}{
		{"queues without a broker say KEDA drops an empty FromEnv", map[string]string{"queues": "video", "acksLate": "true"},
			`metadata "brokerURL" is required: queues, acksLate set but neither brokerURL nor brokerURLFromEnv has a value (KEDA drops brokerURLFromEnv when the container's variable is unset or empty)`},
		{"both brokerURL and brokerURLFromEnv", map[string]string{"brokerURL": "redis://:pw9secret@h", "brokerURLFromEnv": "redis://h"},
			`metadata "brokerURL": bad value "redis://:xxxxx@h": set "brokerURL" or "brokerURLFromEnv", not both`},
		{"queues of only commas", map[string]string{"brokerURL": "redis://h", "queues": " , "},
			`metadata "queues": bad value " , ": comma-separated Celery queue names, at least one (leave the key out for the default queue "celery")`},
		{"queues empty, which is not the default queue", map[string]string{"brokerURL": "redis://h", "queues": ""},
			`metadata "queues": bad value "": comma-separated Celery queue names, at least one (leave the key out for the default queue "celery")`},
		{"queues blank", map[string]string{"brokerURL": "redis://h", "queues": " "},
			`metadata "queues": bad value " ": comma-separated Celery queue names, at least one (leave the key out for the default queue "celery")`},
		{"tasksPerReplica zero", map[string]string{"brokerURL": "redis://h", "tasksPerReplica": "0"},
			`metadata "tasksPerReplica": bad value "0": a number from 0.001 to 1e+06`},
		{"prioritySteps descending", map[string]string{"brokerURL": "redis://h", "prioritySteps": "9,6"},
			`metadata "prioritySteps": bad value "9,6": comma-separated whole numbers from 0 to 255 in ascending order, such as 0,3,6,9`},
		{"prioritySeparator with a broken escape", map[string]string{"brokerURL": "redis://h", "prioritySeparator": `\x0`},
			`metadata "prioritySeparator": bad value "\\x0": a non-empty string; escapes such as \x06\x16 allowed`},
		{"visibilityTimeout negative", map[string]string{"brokerURL": "redis://h", "visibilityTimeout": "-5s"},
			`metadata "visibilityTimeout": bad value "-5s": a positive Go duration such as 90s or 1h, or a bare number of seconds`},
		{"acksLate not a boolean", map[string]string{"brokerURL": "redis://h", "acksLate": "maybe"},
			`metadata "acksLate": bad value "maybe": true or false`},
		{"queueWaitTarget zero", map[string]string{"brokerURL": "redis://h", "queueWaitTarget": "0s"},
			`metadata "queueWaitTarget": bad value "0s": a positive Go duration such as 90s or 1h, or a bare number of seconds`},
		{"queueWaitTarget not a duration", map[string]string{"brokerURL": "redis://h", "queueWaitTarget": "soon"},
			`metadata "queueWaitTarget": bad value "soon": a positive Go duration such as 90s or 1h, or a bare number of seconds`},
		{"queueWaitTarget above a day", map[string]string{"brokerURL": "redis://h", "queueWaitTarget": "25h"},
			`metadata "queueWaitTarget": bad value "25h": at most 24h`},
		{"podStartupTime not a duration", map[string]string{"brokerURL": "redis://h", "podStartupTime": "slow"},
			`metadata "podStartupTime": bad value "slow": a positive Go duration such as 90s or 1h, or a bare number of seconds`},
		{"podStartupTime zero", map[string]string{"brokerURL": "redis://h", "podStartupTime": "0"},
			`metadata "podStartupTime": bad value "0": a positive Go duration such as 90s or 1h, or a bare number of seconds`},
		{"podStartupTime above an hour", map[string]string{"brokerURL": "redis://h", "podStartupTime": "2h"},
			`metadata "podStartupTime": bad value "2h": at most 1h`},
		{"queueWaitTarget without a broker", map[string]string{"queueWaitTarget": "60s"},
			`metadata "brokerURL" is required: queueWaitTarget set but neither brokerURL nor brokerURLFromEnv has a value (KEDA drops brokerURLFromEnv when the container's variable is unset or empty)`},
		{"a bad broker URL", map[string]string{"brokerURL": "ftp://h"},
			`metadata "brokerURL": bad value "ftp://h": scheme "ftp" is not supported` + want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(meta.New(tt.md))
			if err == nil {
				t.Fatal("ParseConfig succeeded")
			}
			if err.Error() != tt.err {
				t.Errorf("error\n got %s\nwant %s", err, tt.err)
			}
			var me *meta.Error
			if !errors.As(err, &me) {
				t.Errorf("%v does not wrap a *meta.Error", err)
			}
		})
	}
}

func TestLayoutListsFollowKombu(t *testing.T) {
	l := DefaultLayout("video")
	l.KeyPrefix = "p:"
	want := []string{"p:video", "p:video\x06\x163", "p:video\x06\x166", "p:video\x06\x169"}
	if got := l.Lists("video"); !reflect.DeepEqual(got, want) {
		t.Errorf("Lists = %q, want %q", got, want)
	}
}

func FuzzParseBrokerURL(f *testing.F) {
	for _, s := range []string{"redis://:s3cretpw@h:6380/2", "rediss://u:pw@h?ssl_cert_reqs=CERT_NONE", "sentinel://:pw@a;sentinel://:pw@b/1",
		"redis+socket:///x?virtual_host=2", "redis://:p%40ss@h", "redis://h/1?virtual_host=2", "::", "redis://[::1"} {
		f.Add(s, "")
		f.Add(s, "mymaster")
	}
	f.Fuzz(func(t *testing.T, raw, master string) {
		b, err := ParseBrokerURL(raw, master)
		pw := ""
		for part := range strings.SplitSeq(raw, ";") {
			if u, perr := url.Parse(strings.TrimSpace(part)); perr == nil && u.User != nil {
				if p, ok := u.User.Password(); ok && len(p) >= 6 {
					pw = p
				}
			}
		}
		if pw == "" || strings.Contains(strings.ReplaceAll(raw, pw, ""), pw) ||
			strings.Contains(want+`metadata "brokerURL": bad valuesentinelMaster`+master+strconv.Quote(master), pw) {
			// No password, or one that also appears elsewhere in the text
			// (sentinelMaster "\x000000" prints as \x000000: six zeros).
			return
		}
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("error %q holds the password %q", err, pw)
		}
		if err == nil && strings.Contains(b.Redacted(), pw) {
			t.Errorf("Redacted() %q holds the password %q", b.Redacted(), pw)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add("redis://h/1", "video,thumbs", "2.5", "0,3,6,9", `\x06\x16`, "90s", "true")
	f.Add("", "a", "0", "9,1", `\x`, "-1", "x")
	f.Fuzz(func(t *testing.T, broker, queues, tpr, steps, sep, vt, acks string) {
		c, err := ParseConfig(meta.New(map[string]string{"brokerURL": broker, "queues": queues, "tasksPerReplica": tpr,
			"prioritySteps": steps, "prioritySeparator": sep, "visibilityTimeout": vt, "acksLate": acks}))
		if err != nil {
			if !meta.IsError(err) {
				t.Errorf("error %v is not a metadata error", err)
			}
			return
		}
		if c == nil {
			return
		}
		if len(c.Layout.Queues) == 0 || c.Layout.Separator == "" || c.Layout.VisibilityTimeout <= 0 || c.TasksPerReplica <= 0 {
			t.Errorf("accepted a config with a hole: %+v", c)
		}
	})
}

func TestSSLCertReqsTakesBothSpellings(t *testing.T) {
	for v, verify := range map[string]bool{
		"required": true, "optional": true, "none": false,
		"CERT_REQUIRED": true, "CERT_OPTIONAL": true, "CERT_NONE": false, "cert_none": false, "None": false,
	} {
		b, err := ParseBrokerURL("rediss://h:6380/0?ssl_cert_reqs="+v, "")
		if err != nil {
			t.Errorf("ssl_cert_reqs=%s: %v", v, err)
			continue
		}
		if !b.tls || b.verify != verify {
			t.Errorf("ssl_cert_reqs=%s: tls %t verify %t, want verify %t", v, b.tls, b.verify, verify)
		}
	}
}
