package components_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/forecast/store"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/server"
	"github.com/montage/montage-scaler/scaler/source"
	"github.com/montage/montage-scaler/scaler/spec"
	"github.com/montage/montage-scaler/test/servers"
)

// TestForecastComponentFromTheBrokersHistory stores three weeks of a
// Monday-evening habit in a real redis-server and asks a registry over a
// Set (read-only, as check runs it) at Monday 17:55 of the fourth week,
// with an empty queue.
func TestForecastComponentFromTheBrokersHistory(t *testing.T) {
	rs := servers.StartRedis(t)
	monday := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	now := monday.Add(3*forecast.Week + 17*time.Hour + 55*time.Minute)
	clock := func() time.Time { return now }

	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rc.Close() })
	history := store.New(rc, "media", "worker", 4)
	for b := monday; b.Before(now); b = b.Add(forecast.Bucket) {
		v := 0.0
		if b.Weekday() == time.Monday && b.Hour() >= 18 && b.Hour() < 21 {
			v = 3.4
		}
		if err := history.Write(t.Context(), b, forecast.Demand{forecast.KindLegacyAsk: v}, b); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		mode       string
		want       float64
		wantActive bool
	}{
		{mode: "enabled", want: 3.4, wantActive: true},
		{mode: "dry-run", want: 1, wantActive: false},
	} {
		t.Run("a forecast in "+tc.mode+" mode", func(t *testing.T) {
			set := source.New(components.Table(), source.Options{Now: clock, ReadOnly: true})
			t.Cleanup(set.Close)
			reg := registry.New(registry.Options{Sources: set, Now: clock,
				Parse: spec.Options{Table: components.Pure(), StaleAfter: time.Minute}, FirstWait: 10 * time.Second})
			t.Cleanup(reg.Close)
			promReg := prometheus.NewRegistry()
			promReg.MustRegister(set.Collector()) // the forecast exports its own series
			srv := server.New(server.Options{Registry: reg, Metrics: server.NewMetrics(promReg), Now: clock})

			md := map[string]string{"brokerURL": rs.URL(0), "minReplicas": "1", "maxReplicas": "8", "forecastMode": tc.mode}
			d, err := reg.Decide(t.Context(), "media", "worker", md)
			if err != nil {
				t.Fatal(err)
			}
			// An RPC records the decision's metrics.
			if _, err := srv.IsActive(t.Context(), &pb.ScaledObjectRef{Namespace: "media", Name: "worker", ScalerMetadata: md}); err != nil {
				t.Fatal(err)
			}
			if d.Desired == nil || *d.Desired != tc.want || d.Active != tc.wantActive {
				t.Fatalf("decision %v active %t (%s), want %g %t", d.Desired, d.Active, d.Error, tc.want, tc.wantActive)
			}
			c := d.Components[len(d.Components)-1]
			if c.Name != "forecast" || c.Desired == nil || *c.Desired != 3.4 {
				t.Fatalf("forecast component %+v, want 3.4", c)
			}
			det := c.Detail.(decide.ForecastDetail)
			if det.Slot != "Mon 18:00 UTC" || det.Samples != 3 || det.Acting != (tc.mode == "enabled") || det.LastWeek == nil || det.LastWeek.Relative != 0 {
				t.Errorf("detail %+v", det)
			}
			mfs, err := promReg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, mf := range mfs {
				if mf.GetName() != "montage_scaler_forecast_replicas" {
					continue
				}
				for _, mt := range mf.GetMetric() {
					var ls []string
					for _, l := range mt.GetLabel() {
						ls = append(ls, l.GetName()+"="+l.GetValue())
					}
					got = append(got, strings.Join(ls, ",")+" "+strconv.FormatFloat(mt.GetGauge().GetValue(), 'g', -1, 64))
				}
			}
			if want := "mode=" + tc.mode + ",namespace=media,scaledobject=worker 3.4"; len(got) != 1 || got[0] != want {
				t.Errorf("montage_scaler_forecast_replicas %q, want %q", got, want)
			}
		})
	}
}
