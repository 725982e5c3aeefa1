package broker_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/test/servers"
)

// BenchmarkLatest measures the RPC path: reading a watch's snapshot.
func BenchmarkLatest(b *testing.B) {
	r := servers.StartRedis(b)
	h := broker.NewHub(broker.HubOptions{})
	b.Cleanup(h.Close)
	broker, _ := celery.ParseBrokerURL("redis://"+net.JoinHostPort("127.0.0.1", fmt.Sprint(r.Port()))+"/0", "")
	w := h.Watch(broker, celery.DefaultLayout("video"))
	defer w.Close()
	if _, err := w.First(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = w.Latest()
	}
}
