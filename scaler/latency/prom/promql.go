package prom

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/wrongport"
)

// maxPromBody caps a Prometheus answer; a single-series result is tiny.
const maxPromBody = 4 << 20

// promClient asks one Prometheus server with one set of credentials.
type promClient struct {
	base    string // no trailing slash
	shown   string // base with credentials redacted
	auth    latency.Auth
	client  *http.Client
	timeout time.Duration
}

// promValue is one instant value out of a query.
type promValue struct {
	Value    float64 // NaN allowed
	Empty    bool
	Labels   string
	Warnings []string
	Infos    []string
}

// newPromClient builds a client whose transport carries the config's TLS
// material; base is cloned so connection pools are per credential set.
func newPromClient(c *latency.Config, base *http.Client) (*promClient, error) {
	if base == nil {
		base = &http.Client{}
	}
	cl := *base
	if len(c.Auth.CA) > 0 || len(c.Auth.ClientCert) > 0 {
		tr, ok := base.Transport.(*http.Transport)
		if base.Transport == nil {
			tr, ok = http.DefaultTransport.(*http.Transport)
		}
		if !ok {
			return nil, errors.New("latency: TLS settings need an *http.Transport")
		}
		tr = tr.Clone()
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if tr.TLSClientConfig != nil {
			tc = tr.TLSClientConfig.Clone()
		}
		if len(c.Auth.CA) > 0 {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(c.Auth.CA)
			tc.RootCAs = pool
		}
		if len(c.Auth.ClientCert) > 0 {
			pair, err := tls.X509KeyPair(c.Auth.ClientCert, c.Auth.ClientKey)
			if err != nil {
				return nil, fmt.Errorf("latency: client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		tr.TLSClientConfig = tc
		cl.Transport = tr
	}
	return &promClient{base: c.PrometheusURL, shown: meta.Redact(c.PrometheusURL), auth: c.Auth, client: &cl, timeout: c.Timeout}, nil
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

type queryData struct {
	ResultType model.ValueType `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// query evaluates q now. An empty result is not an error (Empty is set); more
// than one series is. what names the metadata key for errors.
func (p *promClient) query(ctx context.Context, what, q string) (promValue, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := p.request(ctx, q)
	if err != nil {
		return promValue{}, fmt.Errorf("prometheus %s: %w", p.shown, err)
	}
	resp, err := wrongport.Do(p.client, req)
	if err != nil {
		return promValue{}, p.callError(ctx, err)
	}
	defer resp.Body.Close()
	if isRedirect(resp.StatusCode) {
		return promValue{}, fmt.Errorf("prometheus %s: HTTP %d (a redirect, not followed: set prometheusURL to the server's own address)", p.shown, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPromBody+1))
	if err != nil {
		return promValue{}, fmt.Errorf("prometheus %s: reading the answer: %w", p.shown, err)
	}
	if len(body) > maxPromBody {
		return promValue{}, fmt.Errorf("prometheus %s: answer to %s larger than the %d MiB limit", p.shown, what, maxPromBody>>20)
	}
	// Only the API's own answer is quoted: any other body (a login page,
	// another service's secrets) is said to be there, never shown.
	ar, ok := decodeAPIResponse(body)
	if !ok {
		return promValue{}, fmt.Errorf("prometheus %s: HTTP %d (%s)", p.shown, resp.StatusCode, notAPIAnswer)
	}
	if ar.Status != "success" {
		return promValue{}, fmt.Errorf("prometheus %s: %s %q failed (HTTP %d, status %q): %s", p.shown, what, q, resp.StatusCode,
			ar.Status, meta.Clip(ar.ErrorType+": "+ar.Error, maxShownBody))
	}
	v, err := decodeResult(ar.Data, what, q)
	if err != nil {
		return promValue{}, fmt.Errorf("prometheus %s: %w", p.shown, err)
	}
	v.Warnings, v.Infos = clipAll(ar.Warnings), clipAll(ar.Infos)
	return v, nil
}

// request is the query API's POST of q with the credentials.
func (p *promClient) request(ctx context.Context, q string) (*http.Request, error) {
	form := url.Values{"query": {q}, "timeout": {p.timeout.String()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	for _, h := range p.auth.Headers {
		req.Header.Set(h[0], h[1])
	}
	switch {
	case p.auth.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+p.auth.BearerToken)
	case p.auth.Username != "":
		req.SetBasicAuth(p.auth.Username, p.auth.Password)
	}
	return req, nil
}

// callError says why a query got no answer: refused by the address
// policy, no answer within latencyTimeout, a gRPC port, or the transport's
// own error.
func (p *promClient) callError(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text repeats the URL, which may hold secrets
	}
	if errors.Is(err, netpolicy.ErrRefused) {
		return fmt.Errorf("prometheusURL %s: %w", p.shown, err)
	}
	if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("prometheus %s: no answer within latencyTimeout %s: %w", p.shown, p.timeout, err)
	}
	if wrongport.SpeaksGRPC(err) {
		err = wrongport.GRPCNotHTTP("Prometheus's HTTP API")
	}
	return fmt.Errorf("prometheus %s: %w", p.shown, err)
}

// notAPIAnswer is what an error says of a body that is not Prometheus's
// own JSON answer, instead of quoting it.
const notAPIAnswer = "not a Prometheus API answer"

// decodeAPIResponse reads body as the query API's envelope: a JSON object
// whose status is "success", or "error" with an errorType and an error.
// Anything else is not the API's answer (ok false).
func decodeAPIResponse(body []byte) (apiResponse, bool) {
	var ar apiResponse
	if err := json.Unmarshal(body, &ar); err != nil {
		return apiResponse{}, false
	}
	switch ar.Status {
	case "success":
		return ar, true
	case "error":
		return ar, ar.ErrorType != "" && ar.Error != ""
	}
	return apiResponse{}, false
}

// isRedirect reports a status the clients answer without following.
func isRedirect(code int) bool { return code >= 300 && code < 400 && code != http.StatusNotModified }

// maxShownBody bounds how much of an upstream's error message is repeated
// in an error.
const maxShownBody = 200

func clipAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, meta.Clip(s, maxShownBody))
	}
	return out
}

// malformedError is an answer without the shape of Prometheus' query API:
// an error, never "no data" (a made-up empty result would drop the
// latency component's opinion).
func malformedError(what, why string) error {
	return fmt.Errorf("malformed answer to %s: %s", what, why)
}

// sampleShape is what a vector or matrix item must carry besides labels:
// a value [time, "number"], or values of them.
type sampleShape struct {
	Value      []json.RawMessage   `json:"value"`
	Values     [][]json.RawMessage `json:"values"`
	Histogram  json.RawMessage     `json:"histogram"`
	Histograms json.RawMessage     `json:"histograms"`
}

// isPair reports whether a sample is [time, "number"]: anything else
// would decode as a 0.
func isPair(p []json.RawMessage) bool {
	return len(p) == 2 && len(bytes.TrimSpace(p[1])) > 0 && bytes.TrimSpace(p[1])[0] == '"'
}

// hasValue reports whether a series of a vector (or a matrix) has its
// value (values), each one a pair.
func (sh sampleShape) hasValue(matrix bool) bool {
	if !matrix {
		return isPair(sh.Value)
	}
	if sh.Values == nil {
		return false
	}
	for _, p := range sh.Values {
		if !isPair(p) {
			return false
		}
	}
	return true
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// decodeResult reads the data of a successful answer: a scalar, or a
// vector or matrix of at most one float series. An empty vector or matrix
// is Empty; a missing or null data, result or value, a native histogram
// or several series are errors.
func decodeResult(data json.RawMessage, what, q string) (promValue, error) {
	if isNull(data) {
		return promValue{}, malformedError(what, `no "data"`)
	}
	var d queryData
	if err := json.Unmarshal(data, &d); err != nil {
		return promValue{}, malformedError(what, meta.Clip(err.Error(), maxShownBody))
	}
	if isNull(d.Result) {
		return promValue{}, malformedError(what, fmt.Sprintf(`"result" of the %s is null or missing`, orNone(d.ResultType)))
	}
	switch d.ResultType {
	case model.ValScalar:
		var s model.Scalar
		if err := json.Unmarshal(d.Result, &s); err != nil {
			return promValue{}, malformedError(what, "scalar: "+meta.Clip(err.Error(), maxShownBody))
		}
		return promValue{Value: float64(s.Value), Labels: "scalar"}, nil
	case model.ValVector, model.ValMatrix:
		return decodeSeries(d, what, q)
	case model.ValNone:
		return promValue{}, malformedError(what, `no "resultType"`)
	}
	return promValue{}, fmt.Errorf("%s %q returned a %s, want a number (scalar or one series)", what, q, d.ResultType)
}

// decodeSeries reads a vector or a matrix: empty, or one float series
// whose (latest) value is the answer.
func decodeSeries(d queryData, what, q string) (promValue, error) {
	var shapes []sampleShape
	if err := json.Unmarshal(d.Result, &shapes); err != nil {
		return promValue{}, malformedError(what, fmt.Sprintf("the %s is not a list of series with values", d.ResultType))
	}
	for _, sh := range shapes {
		if !isNull(sh.Histogram) || !isNull(sh.Histograms) {
			return promValue{}, fmt.Errorf("%s %q returned a native histogram, want a number (apply histogram_quantile)", what, q)
		}
		if !sh.hasValue(d.ResultType == model.ValMatrix) {
			return promValue{}, malformedError(what, fmt.Sprintf("a series of the %s has no value [time, \"number\"]", d.ResultType))
		}
	}
	if len(shapes) > 1 {
		var first struct {
			Metric model.Metric `json:"metric"`
		}
		var items []json.RawMessage
		_ = json.Unmarshal(d.Result, &items)
		_ = json.Unmarshal(items[0], &first)
		return promValue{}, fmt.Errorf("%s %q returned %d series (first %s); aggregate them to one with sum or max", what, q, len(shapes), first.Metric)
	}
	if d.ResultType == model.ValVector {
		var vec model.Vector
		if err := json.Unmarshal(d.Result, &vec); err != nil {
			return promValue{}, malformedError(what, "vector: "+meta.Clip(err.Error(), maxShownBody))
		}
		if len(vec) == 0 {
			return promValue{Empty: true}, nil
		}
		return promValue{Value: float64(vec[0].Value), Labels: vec[0].Metric.String()}, nil
	}
	var mat model.Matrix
	if err := json.Unmarshal(d.Result, &mat); err != nil {
		return promValue{}, malformedError(what, "matrix: "+meta.Clip(err.Error(), maxShownBody))
	}
	if len(mat) == 0 || len(mat[0].Values) == 0 {
		return promValue{Empty: true}, nil
	}
	// A range selector: its latest sample is the current value.
	return promValue{Value: float64(mat[0].Values[len(mat[0].Values)-1].Value), Labels: mat[0].Metric.String()}, nil
}

func orNone(t model.ValueType) string {
	if t == model.ValNone {
		return "answer"
	}
	return t.String()
}

// replicas reads replicasQuery: it must give one number from 0 to
// decide.Ceiling (rounded to a whole one). More is not this Deployment's
// pods: the query counts something else.
func (p *promClient) replicas(ctx context.Context, q string) (int32, []string, error) {
	v, err := p.query(ctx, "replicasQuery", q)
	if err != nil {
		return 0, nil, err
	}
	if v.Empty {
		return 0, nil, fmt.Errorf("replicasQuery %q matched nothing: the current replicas are unknown", q)
	}
	if err := decide.CheckReplicas(v.Value); err != nil {
		return 0, nil, fmt.Errorf("replicasQuery %q: %w", q, err)
	}
	return int32(math.Round(v.Value)), append(v.Warnings, v.Infos...), nil
}
