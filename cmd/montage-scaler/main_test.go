package main

import (
	"strings"
	"testing"
)

func TestEveryCommandsHelpSaysFlagsAreAlsoEnvironmentVariables(t *testing.T) {
	for cmd, example := range map[string]string{
		"serve": "(--grpc-addr: MONTAGE_SCALER_GRPC_ADDR)", "check": "(--metadata: MONTAGE_SCALER_METADATA)",
		"explain": "(--metadata: MONTAGE_SCALER_METADATA)", "calendar": "(--metadata: MONTAGE_SCALER_METADATA)",
		"simulate": "(--metadata: MONTAGE_SCALER_METADATA)", "forecast": "(--metadata: MONTAGE_SCALER_METADATA)",
		"report": "(--", // report has no --metadata: its first flag is the example
	} {
		code, out, stderr := runWith(t, nil, cmd, "--help")
		help := out + stderr
		if code != exitOK || !strings.HasPrefix(help, "usage: montage-scaler "+cmd+" [flags]\n") ||
			!strings.Contains(help, "environment variable MONTAGE_SCALER_<FLAG>") || !strings.Contains(help, example) {
			t.Errorf("%s --help: exit %d, want 0 naming MONTAGE_SCALER_<FLAG> and %s:\n%s", cmd, code, example, help)
		}
	}
}
