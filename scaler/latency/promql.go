package latency

import (
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

	"github.com/montage/montage-scaler/scaler/meta"
)

// maxPromBody caps a Prometheus answer; a single-series result is tiny.
const maxPromBody = 4 << 20

// NoSeriesWarning is the explanation of an empty PromQL result.
const NoSeriesWarning = "no series: the query matched nothing (a typo, or no traffic yet)"

// promClient asks one Prometheus server with one set of credentials.
type promClient struct {
	base    string // no trailing slash
	shown   string // base with credentials redacted
	auth    Auth
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
func newPromClient(c *Config, base *http.Client) (*promClient, error) {
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
	form := url.Values{"query": {q}, "timeout": {p.timeout.String()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return promValue{}, fmt.Errorf("prometheus %s: %w", p.shown, err)
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
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, which may hold secrets
		}
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return promValue{}, fmt.Errorf("prometheus %s: no answer within latencyTimeout %s: %w", p.shown, p.timeout, err)
		}
		if speaksGRPC(err) {
			err = errPromIsGRPC
		}
		return promValue{}, fmt.Errorf("prometheus %s: %w", p.shown, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPromBody+1))
	if err != nil {
		return promValue{}, fmt.Errorf("prometheus %s: reading the answer: %w", p.shown, err)
	}
	if len(body) > maxPromBody {
		return promValue{}, fmt.Errorf("prometheus %s: answer to %s larger than the %d MiB limit", p.shown, what, maxPromBody>>20)
	}
	var ar apiResponse
	jerr := json.Unmarshal(body, &ar)
	if resp.StatusCode >= 500 || jerr != nil {
		msg := strings.TrimSpace(string(body[:min(len(body), 200)]))
		if jerr == nil && ar.Error != "" {
			msg = ar.ErrorType + ": " + ar.Error
		}
		return promValue{}, fmt.Errorf("prometheus %s: HTTP %d for %s: %s", p.shown, resp.StatusCode, what, msg)
	}
	if ar.Status != "success" {
		return promValue{}, fmt.Errorf("prometheus %s: %s %q failed (HTTP %d, status %q): %s: %s", p.shown, what, q, resp.StatusCode, ar.Status, ar.ErrorType, ar.Error)
	}
	var d queryData
	if err := json.Unmarshal(ar.Data, &d); err != nil {
		return promValue{}, fmt.Errorf("prometheus %s: decoding the answer to %s: %w", p.shown, what, err)
	}
	v := promValue{Warnings: ar.Warnings, Infos: ar.Infos}
	switch d.ResultType {
	case model.ValScalar:
		var s model.Scalar
		if err := json.Unmarshal(d.Result, &s); err != nil {
			return promValue{}, fmt.Errorf("prometheus %s: decoding the scalar answer to %s: %w", p.shown, what, err)
		}
		v.Value = float64(s.Value)
		v.Labels = "scalar"
	case model.ValVector:
		var vec model.Vector
		if err := json.Unmarshal(d.Result, &vec); err != nil {
			return promValue{}, fmt.Errorf("prometheus %s: decoding the vector answer to %s: %w", p.shown, what, err)
		}
		switch len(vec) {
		case 0:
			v.Empty = true
		case 1:
			v.Value = float64(vec[0].Value)
			v.Labels = vec[0].Metric.String()
		default:
			return promValue{}, fmt.Errorf("%s %q returned %d series (first %s); aggregate them to one with sum or max", what, q, len(vec), vec[0].Metric)
		}
	case model.ValMatrix:
		var mat model.Matrix
		if err := json.Unmarshal(d.Result, &mat); err != nil {
			return promValue{}, fmt.Errorf("prometheus %s: decoding the matrix answer to %s: %w", p.shown, what, err)
		}
		switch {
		case len(mat) == 0 || (len(mat) == 1 && len(mat[0].Values) == 0):
			v.Empty = true
		case len(mat) == 1:
			// A range selector: its latest sample is the current value.
			v.Value = float64(mat[0].Values[len(mat[0].Values)-1].Value)
			v.Labels = mat[0].Metric.String()
		default:
			return promValue{}, fmt.Errorf("%s %q returned %d series (first %s); aggregate them to one with sum or max", what, q, len(mat), mat[0].Metric)
		}
	default:
		return promValue{}, fmt.Errorf("%s %q returned a %s, want a number (scalar or one series)", what, q, d.ResultType)
	}
	return v, nil
}

// replicas reads replicasQuery: it must give one finite, non-negative number.
func (p *promClient) replicas(ctx context.Context, q string) (int32, []string, error) {
	v, err := p.query(ctx, "replicasQuery", q)
	if err != nil {
		return 0, nil, err
	}
	if v.Empty {
		return 0, nil, fmt.Errorf("replicasQuery %q matched nothing: the current replicas are unknown", q)
	}
	if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) || v.Value < 0 || v.Value > math.MaxInt32 {
		return 0, nil, fmt.Errorf("replicasQuery %q returned %g, want a replica count", q, v.Value)
	}
	return int32(math.Round(v.Value)), append(v.Warnings, v.Infos...), nil
}
