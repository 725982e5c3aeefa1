package suggest

import "testing"

func TestNearest(t *testing.T) {
	keys := []string{"metadata", "format", "timeout", "tasksPerReplica", "calendarLeadTime"}
	for _, tc := range []struct {
		name, word, want string
	}{
		{"a dropped letter is found", "metdata", "metadata"},
		{"case is ignored", "TasksPerReplca", "tasksPerReplica"},
		{"two edits on a short word are still a typo", "fromat", "format"},
		{"a long word allows a fifth of its length", "calendrLeedTimee", "calendarLeadTime"},
		{"three edits on a short word are another word", "timer-x", ""},
		{"nothing near gives nothing", "grpc-addr", ""},
		{"an exact match is its own suggestion", "format", "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Nearest(tc.word, keys); got != tc.want {
				t.Fatalf("Nearest(%q) = %q, want %q", tc.word, got, tc.want)
			}
		})
	}
}
