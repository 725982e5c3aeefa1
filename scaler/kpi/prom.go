package kpi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/wrongport"
)

// maxBody caps one Prometheus answer: a day of a few series at 15 s steps is
// well under it.
const maxBody = 32 << 20

// Sample is one series' value of an instant query.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Series is one series of a range query.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Point is a value at an instant.
type Point struct {
	T time.Time
	V float64
}

// UnreachableError is a Prometheus that did not answer (connection refused,
// DNS, timeout): nothing was measured.
type UnreachableError struct {
	URL string // redacted
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("prometheus %s: unreachable: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Client asks one Prometheus server's HTTP API. Credentials in the URL
// (user:password@) are sent as basic auth and never shown.
type Client struct {
	base    string // no trailing slash
	shown   string
	http    *http.Client
	timeout time.Duration
}

// NewClient checks rawURL (http or https, a host, no query) and returns a
// client whose every query has the given timeout. A bad URL's error quotes
// it with its credentials hidden (a host:port without its scheme whole,
// with the URL meant).
func NewClient(rawURL string, hc *http.Client, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "" {
		shown, hint := meta.Redact(rawURL), ""
		if !strings.Contains(rawURL, "://") {
			// host:port without its scheme: show it (credentials hidden)
			// and what to type.
			if v, err := url.Parse("http://" + rawURL); err == nil && v.Hostname() != "" && v.RawQuery == "" && v.Fragment == "" {
				withScheme := meta.Redact("http://" + rawURL)
				shown, hint = strings.TrimPrefix(withScheme, "http://"), ", like "+withScheme
			}
		}
		// The caller names where the value came from (report: --prometheus).
		return nil, fmt.Errorf("%q: want http(s)://host[:port][/path], the server's base URL%s", shown, hint)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("prometheus timeout %s: want above 0", timeout)
	}
	if hc == nil {
		// The query API never redirects: a redirect is reported, not
		// followed wherever it points.
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{base: strings.TrimRight(rawURL, "/"), shown: meta.Redact(rawURL), http: hc, timeout: timeout}, nil
}

// String is the server's URL with credentials redacted.
func (c *Client) String() string { return c.shown }

// Query evaluates q at the instant at; the result must be a vector or a
// scalar (as a label-less sample).
func (c *Client) Query(ctx context.Context, q string, at time.Time) ([]Sample, error) {
	data, err := c.call(ctx, "/api/v1/query", url.Values{"query": {q}, "time": {unix(at)}}, q)
	if err != nil {
		return nil, err
	}
	switch data.ResultType {
	case model.ValVector:
		var v model.Vector
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, c.badAnswer(q, err)
		}
		out := make([]Sample, len(v))
		for i, s := range v {
			out[i] = Sample{Labels: labels(s.Metric), Value: float64(s.Value)}
		}
		return out, nil
	case model.ValScalar:
		var s model.Scalar
		if err := json.Unmarshal(data.Result, &s); err != nil {
			return nil, c.badAnswer(q, err)
		}
		return []Sample{{Labels: map[string]string{}, Value: float64(s.Value)}}, nil
	}
	return nil, c.badAnswer(q, fmt.Errorf("result type %s, want a vector", data.ResultType))
}

// QueryRange evaluates q from from to until every step.
func (c *Client) QueryRange(ctx context.Context, q string, from, until time.Time, step time.Duration) ([]Series, error) {
	data, err := c.call(ctx, "/api/v1/query_range", url.Values{"query": {q}, "start": {unix(from)}, "end": {unix(until)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}, q)
	if err != nil {
		return nil, err
	}
	if data.ResultType != model.ValMatrix {
		return nil, c.badAnswer(q, fmt.Errorf("result type %s, want a matrix", data.ResultType))
	}
	var m model.Matrix
	if err := json.Unmarshal(data.Result, &m); err != nil {
		return nil, c.badAnswer(q, err)
	}
	out := make([]Series, len(m))
	for i, s := range m {
		out[i] = Series{Labels: labels(s.Metric)}
		for _, p := range s.Values {
			out[i].Points = append(out[i].Points, Point{T: p.Timestamp.Time().UTC(), V: float64(p.Value)})
		}
	}
	return out, nil
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

type queryData struct {
	ResultType model.ValueType `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

func (c *Client) call(ctx context.Context, path string, form url.Values, q string) (queryData, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	form.Set("timeout", c.timeout.String())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return queryData{}, fmt.Errorf("prometheus %s: %w", c.shown, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := wrongport.Do(c.http, req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is shown redacted instead
		}
		if wrongport.SpeaksGRPC(err) {
			return queryData{}, fmt.Errorf("prometheus %s: %w", c.shown, wrongport.GRPCNotHTTP("Prometheus's HTTP API"))
		}
		return queryData{}, &UnreachableError{URL: c.shown, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return queryData{}, fmt.Errorf("prometheus %s: HTTP %d (a redirect, not followed: give the server's own address)", c.shown, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return queryData{}, &UnreachableError{URL: c.shown, Err: err}
	}
	if len(body) > maxBody {
		return queryData{}, fmt.Errorf("prometheus %s: query %s: answer over %d MiB", c.shown, short(q), maxBody>>20)
	}
	// Only the API's own answer is quoted: any other body (a login page,
	// another service's secrets) is said to be there, never shown.
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil || !(r.Status == "success" || r.Status == "error" && r.ErrorType != "" && r.Error != "") {
		return queryData{}, fmt.Errorf("prometheus %s: HTTP %d (not a Prometheus API answer): is the URL the server's base URL?",
			c.shown, resp.StatusCode)
	}
	if r.Status != "success" {
		return queryData{}, fmt.Errorf("prometheus %s: query %s: %s: %s", c.shown, short(q), meta.Clip(r.ErrorType, 100), meta.Clip(r.Error, 200))
	}
	var d queryData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return queryData{}, c.badAnswer(q, err)
	}
	return d, nil
}

func (c *Client) badAnswer(q string, err error) error {
	return fmt.Errorf("prometheus %s: query %s: unexpected answer: %w", c.shown, short(q), err)
}

func labels(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[string(k)] = string(v)
	}
	return out
}

func unix(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', -1, 64)
}

// short is s on one line, cut to 120 characters, for messages.
func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return strconv.Quote(s)
}
