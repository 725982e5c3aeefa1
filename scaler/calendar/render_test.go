package calendar

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func exampleListing(t *testing.T) (Listing, *Config) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "calendar.ics"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f.URL = "https://cal.example.com/xxxxx/basic.ics"
	c := cfg(zone(t, "Europe/Berlin"))
	l, err := List(f, c, ts(t, "2026-11-30T00:00:00Z"), 7)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func TestExampleCalendarWeek(t *testing.T) {
	l, c := exampleListing(t)
	if l.Name != "Montage - creator schedule" || len(l.Warnings) != 0 {
		t.Errorf("name %q warnings %q", l.Name, l.Warnings)
	}
	checkWindows(t, c, l.Windows, []row{
		// Tuesday's session is cancelled, Thursday's moved later.
		{"Evening upload session (late start)", "2026-12-03T19:30:00Z", "2026-12-03T22:00:00Z", 6, SourceProperty, false},
		{"Launch: winter series", "2026-12-04T14:00:00Z", "2026-12-04T18:00:00Z", 8, SourceDescription, false},
		{"Friday live stream", "2026-12-04T19:00:00Z", "2026-12-04T21:00:00Z", 6, SourceCategories + ":peak", false},
		{"Batch day: re-encode the archive", "2026-12-04T23:00:00Z", "2026-12-05T23:00:00Z", 8, SourceCategories + ":burst", false},
	})
}

func TestRenderTableAndJSON(t *testing.T) {
	l, c := exampleListing(t)
	var buf bytes.Buffer
	if err := RenderTable(&buf, l, c.Timezone); err != nil {
		t.Fatal(err)
	}
	golden(t, "example-week.txt", buf.Bytes())
	js, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "example-week.json", append(js, '\n'))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}
