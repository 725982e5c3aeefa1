package main

import (
	"fmt"
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

// TestAMistypedFlagIsSaidOnceInOneLine: a flag error is one line on stderr,
// naming the flag as it is written, with the flag meant when one is near
// (as metadata keys get), and no help after it.
func TestAMistypedFlagIsSaidOnceInOneLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a typo gets the flag meant", []string{"check", "--metdata", "x.yaml"},
			"montage-scaler check: unknown flag --metdata (did you mean --metadata?)\n"},
		{"one dash is the same flag", []string{"explain", "-adr", "127.0.0.1:9090"},
			"montage-scaler explain: unknown flag --adr (did you mean --addr?)\n"},
		{"serve's flags too", []string{"serve", "--grpc-adr", ":9090"},
			"montage-scaler serve: unknown flag --grpc-adr (did you mean --grpc-addr?)\n"},
		{"nothing near says where the flags are", []string{"simulate", "--frobnicate"},
			"montage-scaler simulate: unknown flag --frobnicate (\"montage-scaler simulate -h\" lists the flags)\n"},
		{"a bad duration says what a duration is", []string{"report", "--since", "a day"},
			"montage-scaler report: --since \"a day\": want a duration such as 30s, 2m or 1h\n"},
		{"a bad number says so", []string{"calendar", "--days", "seven"},
			"montage-scaler calendar: --days \"seven\": want a whole number\n"},
		{"a flag's own check is kept", []string{"check", "--at", "tomorrow"},
			"montage-scaler check: --at \"tomorrow\": want RFC3339, like 2026-12-05T18:00:00+01:00\n"},
		{"a missing value says what goes there", []string{"forecast", "--format"},
			"montage-scaler forecast: --format needs a value: text or json\n"},
		{"an argument that is no flag", []string{"check", "examples/metadata.yaml"},
			"montage-scaler check: unexpected argument \"examples/metadata.yaml\" (flags start with --; \"montage-scaler check -h\" lists the flags)\n"},
		{"a mistyped command gets the command meant", []string{"chek", "--metadata", "x.yaml"},
			"montage-scaler: unknown command \"chek\" (did you mean \"check\"?)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runWith(t, nil, tc.args...)
			if code != exitUsage || out != "" || stderr != tc.want {
				t.Fatalf("%v: exit %d, stdout %q\nstderr %q\nwant exit 2, nothing on stdout and\n       %q", tc.args, code, out, stderr, tc.want)
			}
		})
	}
}

// TestEveryCommandsHelpListsItsExitStatuses: -h prints, on stdout, the
// command's rows of README's exit status table.
func TestEveryCommandsHelpListsItsExitStatuses(t *testing.T) {
	for _, cmd := range []string{"serve", "check", "explain", "calendar", "simulate", "forecast", "report"} {
		code, out, stderr := runWith(t, nil, cmd, "-h")
		if code != exitOK || stderr != "" {
			t.Errorf("%s -h: exit %d, stderr %q; want 0 and the help on stdout", cmd, code, stderr)
		}
		statuses := exitStatuses(cmd)
		if len(statuses) < 3 {
			t.Errorf("%s: %d exit statuses in the table, want 0, 1 and 2 at least", cmd, len(statuses))
		}
		for _, s := range statuses {
			if line := fmt.Sprintf("\n  %d  %s\n", s.code, s.meaning); !strings.Contains(out, "\nexit status:\n") || !strings.Contains(out, line) {
				t.Errorf("%s -h lacks %q:\n%s", cmd, line, out)
			}
		}
	}
}

// TestABadVariableIsSaidAsItsFlagIs: a MONTAGE_SCALER_<FLAG> value that does
// not parse names the variable, its flag and what the flag takes.
func TestABadVariableIsSaidAsItsFlagIs(t *testing.T) {
	code, out, stderr := runWith(t, map[string]string{"MONTAGE_SCALER_TIMEOUT": "ten seconds"}, "check", "--metadata", "x.yaml")
	want := "montage-scaler check: MONTAGE_SCALER_TIMEOUT=\"ten seconds\" (--timeout): want a duration such as 30s, 2m or 1h\n"
	if code != exitUsage || out != "" || stderr != want {
		t.Fatalf("exit %d, stdout %q\nstderr %q\nwant 2 and %q", code, out, stderr, want)
	}
}
