package celery

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/montage/montage-scaler/scaler/meta"
)

const brokerKey = "brokerURL"

// CertReqs are the values of a rediss:// URL's ssl_cert_reqs, in either
// spelling Celery users meet (any case): kombu's URL form and Python's ssl
// constant names.
const CertReqs = "required|optional|none (or CERT_REQUIRED|CERT_OPTIONAL|CERT_NONE)"

const allowedBroker = "a Celery broker URL: redis://[[user]:pass@]host[:port][/db], " +
	"rediss://…?ssl_cert_reqs=" + CertReqs + ", " +
	"sentinel://h1:26379;sentinel://h2:26379/db with sentinelMaster, " +
	"or redis+socket:///path?virtual_host=N"

// Broker is a parsed Celery broker URL. The zero Broker is not usable; get one
// from ParseBrokerURL.
type Broker struct {
	scheme   string   // redis, rediss, sentinel or redis+socket
	addrs    []string // host:port, sentinels, or the socket path
	username string
	password string
	db       int
	master   string // sentinel master name

	// TLS (rediss): verify is false only for CERT_NONE.
	tls      bool
	verify   bool
	certReqs string
	caCerts  string
	certFile string
	keyFile  string
}

// ParseBrokerURL parses a broker URL in Celery's syntax. sentinelMaster is
// required for sentinel:// URLs and refused otherwise. Errors are *meta.Error
// with Key "brokerURL" and the value redacted.
func ParseBrokerURL(raw, sentinelMaster string) (Broker, error) {
	raw = strings.TrimSpace(raw)
	bad := func(why string) (Broker, error) {
		return Broker{}, &meta.Error{Key: brokerKey, Value: redactRaw(raw), Allowed: why + "; want " + allowedBroker}
	}
	if raw == "" {
		return bad("must not be empty")
	}
	if strings.Contains(raw, ";") {
		return parseSentinel(raw, sentinelMaster, bad)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if sentinelMaster != "" && scheme != "sentinel" {
		return Broker{}, &meta.Error{Key: "sentinelMaster", Value: sentinelMaster, Allowed: "only allowed with a sentinel:// broker URL"}
	}
	switch scheme {
	case "redis", "rediss":
		return parseTCP(u, scheme, bad)
	case "sentinel":
		return parseSentinel(raw, sentinelMaster, bad)
	case "redis+socket", "socket":
		return parseSocket(u, bad)
	case "":
		return bad("no scheme")
	default:
		return bad(fmt.Sprintf("scheme %q is not supported", u.Scheme))
	}
}

func parseTCP(u *url.URL, scheme string, bad func(string) (Broker, error)) (Broker, error) {
	b := Broker{scheme: scheme}
	if u.Opaque != "" {
		return bad("missing // after the scheme")
	}
	addr, err := hostPort(u.Host, "6379")
	if err != nil {
		return bad(err.Error())
	}
	b.addrs = []string{addr}
	b.username, b.password = userinfo(u)
	if b.db, err = dbFromPath(u.Path); err != nil {
		return bad(err.Error())
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile":
			if scheme != "rediss" {
				return bad(fmt.Sprintf("option %q needs rediss://", k))
			}
		case "virtual_host":
			// Celery reads the db from virtual_host too.
			if u.Path != "" && u.Path != "/" {
				return bad("db given both in the path and as virtual_host")
			}
			if b.db, err = parseDB(q.Get(k)); err != nil {
				return bad(err.Error())
			}
		default:
			return bad(fmt.Sprintf("option %q is not supported", k))
		}
	}
	if scheme == "rediss" {
		if err := b.parseTLS(q); err != nil {
			return bad(err.Error())
		}
	}
	return b, nil
}

func parseSentinel(raw, master string, bad func(string) (Broker, error)) (Broker, error) {
	b := Broker{scheme: "sentinel", master: master}
	parts := strings.Split(raw, ";")
	for i, part := range parts {
		part = strings.TrimSpace(part)
		u, err := url.Parse(part)
		if err != nil || !strings.EqualFold(u.Scheme, "sentinel") {
			return bad(fmt.Sprintf("sentinel URL %d of %d is not sentinel://host:port", i+1, len(parts)))
		}
		if u.Opaque != "" {
			return bad("missing // after the scheme")
		}
		addr, err := hostPort(u.Host, "26379")
		if err != nil {
			return bad(err.Error())
		}
		b.addrs = append(b.addrs, addr)
		if user, pass := userinfo(u); user != "" || pass != "" {
			if (b.username != "" || b.password != "") && (b.username != user || b.password != pass) {
				return bad("sentinel URLs carry different credentials")
			}
			b.username, b.password = user, pass
		}
		if u.Path != "" && u.Path != "/" {
			db, err := dbFromPath(u.Path)
			if err != nil {
				return bad(err.Error())
			}
			if b.db != 0 && db != b.db {
				return bad("sentinel URLs name different dbs")
			}
			b.db = db
		}
		if u.RawQuery != "" {
			return bad("sentinel URLs take no options")
		}
	}
	if master == "" {
		return Broker{}, &meta.Error{Key: "sentinelMaster", Allowed: "required with a sentinel:// broker URL (Celery's master_name transport option)"}
	}
	return b, nil
}

func parseSocket(u *url.URL, bad func(string) (Broker, error)) (Broker, error) {
	b := Broker{scheme: "redis+socket"}
	if u.Host != "" {
		return bad("a socket URL has no host: redis+socket:///path/to/redis.sock")
	}
	if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
		return bad("a socket URL needs an absolute path")
	}
	b.addrs = []string{u.Path}
	b.username, b.password = userinfo(u)
	q := u.Query()
	for k := range q {
		if k != "virtual_host" {
			return bad(fmt.Sprintf("option %q is not supported", k))
		}
	}
	if v := q.Get("virtual_host"); v != "" {
		db, err := parseDB(v)
		if err != nil {
			return bad(err.Error())
		}
		b.db = db
	}
	return b, nil
}

func hostPort(host, defPort string) (string, error) {
	if host == "" {
		return net.JoinHostPort("localhost", defPort), nil
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			h, p = strings.Trim(host, "[]"), defPort
		} else {
			return "", fmt.Errorf("bad host:port")
		}
	}
	if h == "" {
		h = "localhost"
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port must be a number from 1 to 65535")
	}
	return net.JoinHostPort(h, p), nil
}

func userinfo(u *url.URL) (user, pass string) {
	if u.User == nil {
		return "", ""
	}
	pass, _ = u.User.Password()
	return u.User.Username(), pass
}

func dbFromPath(p string) (int, error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return 0, nil
	}
	return parseDB(p)
}

func parseDB(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("db must be a whole number from 0")
	}
	return n, nil
}

// redactRaw hides the credentials of a value that failed to parse, keeping as
// much as is safe to show.
func redactRaw(raw string) string {
	if raw == "" {
		return ""
	}
	var parts []string
	for part := range strings.SplitSeq(raw, ";") {
		r := meta.Redact(strings.TrimSpace(part))
		// url.Parse accepted a password meta.Redact could not see: hide it all.
		if strings.Contains(part, "@") && !strings.Contains(r, "xxxxx") {
			r = "<redacted>"
		}
		parts = append(parts, r)
	}
	return strings.Join(parts, ";")
}

// Addr is where the broker is reached: host:port, the sentinels, or the
// socket path (no credentials).
func (b Broker) Addr() string { return strings.Join(b.addrs, ",") }

// DB is the Redis database number.
func (b Broker) DB() int { return b.db }

// Redacted is the URL with the password hidden, safe for logs, errors and
// metrics.
func (b Broker) Redacted() string {
	cred := ""
	if b.username != "" || b.password != "" {
		cred = url.User(b.username).String()
		if b.password != "" {
			cred += ":xxxxx"
		}
		cred += "@"
	}
	switch b.scheme {
	case "":
		return ""
	case "sentinel":
		parts := make([]string, len(b.addrs))
		for i, a := range b.addrs {
			parts[i] = "sentinel://" + cred + a
			if i == len(b.addrs)-1 {
				parts[i] += "/" + strconv.Itoa(b.db)
			}
		}
		return strings.Join(parts, ";") + " (master " + strconv.Quote(b.master) + ")"
	case "redis+socket":
		return "redis+socket://" + cred + b.addrs[0] + "?virtual_host=" + strconv.Itoa(b.db)
	default:
		s := b.scheme + "://" + cred + b.addrs[0] + "/" + strconv.Itoa(b.db)
		if b.tls && b.certReqs != "" {
			s += "?ssl_cert_reqs=" + url.QueryEscape(b.certReqs)
		}
		return s
	}
}

// Key identifies the broker connection (address, db, credentials, TLS) so
// watchers of the same broker share one poller. It is a hash: never printed,
// never reversible.
func (b Broker) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%q|%q|%q|%q|%d|%q|%t|%t|%q|%q|%q", b.scheme, b.addrs, b.username, b.password, b.db, b.master, b.tls, b.verify, b.caCerts, b.certFile, b.keyFile)
	return hex.EncodeToString(h.Sum(nil))
}

// ServerKey identifies the Redis server behind b and how it is reached,
// whatever the db: the brokers of one server share its worker heartbeat
// subscription (pub/sub is not per db).
func (b Broker) ServerKey() string {
	b.db = 0
	return b.Key()
}

// TransportRedis is the Transport of every broker URL accepted today:
// redis://, rediss://, sentinel:// and redis+socket://.
const TransportRedis = "redis"

// Transport names the kind of broker b is, which says what reads it:
// TransportRedis, or "" for the zero Broker.
func (b Broker) Transport() string {
	if b.scheme == "" {
		return ""
	}
	return TransportRedis
}

// Scheme is the URL's scheme: redis, rediss, sentinel or redis+socket.
func (b Broker) Scheme() string { return b.scheme }

// Addrs are where the broker is reached: its host:port, the sentinels'
// host:ports, or the socket path (a copy).
func (b Broker) Addrs() []string { return slices.Clone(b.addrs) }

// Credentials are the URL's username and password, for the client that
// logs in with them; never shown (Redacted is).
func (b Broker) Credentials() (username, password string) { return b.username, b.password }

// Master is the sentinel master name of a sentinel:// broker.
func (b Broker) Master() string { return b.master }

// BrokerTLS is how a rediss:// broker is reached. The files are paths,
// read when a client is made (at the edge, not at parse time).
type BrokerTLS struct {
	// Verify is false only for ssl_cert_reqs CERT_NONE.
	Verify                     bool
	CACerts, CertFile, KeyFile string
}

// TLS is b's TLS; ok is false for every scheme but rediss.
func (b Broker) TLS() (t BrokerTLS, ok bool) {
	return BrokerTLS{Verify: b.verify, CACerts: b.caCerts, CertFile: b.certFile, KeyFile: b.keyFile}, b.tls
}

func (b *Broker) parseTLS(q url.Values) error {
	b.tls, b.verify = true, true
	b.certReqs = q.Get("ssl_cert_reqs")
	switch strings.ToUpper(b.certReqs) {
	case "", "CERT_REQUIRED", "REQUIRED":
	case "CERT_OPTIONAL", "OPTIONAL":
		// Python verifies in client mode with CERT_OPTIONAL as with CERT_REQUIRED.
	case "CERT_NONE", "NONE":
		b.verify = false
	default:
		return fmt.Errorf("ssl_cert_reqs %q is not %s", b.certReqs, CertReqs)
	}
	b.caCerts, b.certFile, b.keyFile = q.Get("ssl_ca_certs"), q.Get("ssl_certfile"), q.Get("ssl_keyfile")
	if (b.certFile == "") != (b.keyFile == "") {
		return fmt.Errorf("ssl_certfile and ssl_keyfile go together")
	}
	return nil
}
