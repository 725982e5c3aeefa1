package calendar

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
)

func exampleListing(t *testing.T) (Listing, *Config) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "calendar.ics"))
	if err != nil {
		t.Fatal(err)
	}
	cal, err := ical.Parse(data, ical.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := ical.LoadZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	f := &Feed{URL: "https://cal.example.com/xxxxx/basic.ics", Calendar: cal}
	c := &Config{Timezone: berlin, LeadTime: 10 * time.Minute, Hold: 5 * time.Minute, DefaultReplicas: 4}
	l, err := List(f, c, ts(t, "2026-11-30T00:00:00Z"), 7)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
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

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
