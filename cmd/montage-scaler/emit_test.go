package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimulateEmitsOpenMetricsOfTheScalersPolicyOnly(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	base := []string{"--trace", filepath.Join(dir, "idle-night.csv"), "--metadata", filepath.Join(dir, "scaledobject.yaml"),
		"--calendar", filepath.Join(dir, "idle-night.ics")}
	om := filepath.Join(t.TempDir(), "night.om")
	code, _, stderr := runSimulate(t, append(base, "--emit-openmetrics", om)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(om)
	if err != nil || !bytes.HasPrefix(b, []byte("# TYPE kube_deployment_spec_replicas gauge\n")) || !bytes.HasSuffix(b, []byte("# EOF\n")) {
		t.Fatalf("openmetrics file: %v %.80q", err, b)
	}
	if !strings.Contains(string(b), `montage_scaler_celery_tasks_processed_total{namespace="montage",scaledobject="montage",job="montage-scaler-metrics",`) {
		t.Error("no processed counter")
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a policy that exports no scaler metrics", []string{"--emit-openmetrics", om, "--emit-policy", "keda-builtin"}, exitUsage,
			"montage-scaler simulate: --emit-policy \"keda-builtin\": want montage-scaler or montage-scaler+forecast (the policies montage-scaler's metrics exist under)\n"},
		{"a policy not run", []string{"--emit-openmetrics", om, "--policies", "phase1-hpa"}, exitNoDecision,
			"montage-scaler simulate: --emit-openmetrics: the --emit-policy was not among the policies run (--policies)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runSimulate(t, append(base, tc.args...)...)
			if code != tc.code || stderr != readingLine+tc.want {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}
