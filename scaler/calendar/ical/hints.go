package ical

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	goical "github.com/emersion/go-ical"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Tiers are the CATEGORIES names that set replicas (the ADR's pod
// distribution).
var tiers = map[string]float64{"idle": 1, "normal": 3, "peak": 6, "burst": 8}

// Where an event's replicas came from.
const (
	SourceProperty    = "X-MONTAGE-REPLICAS"
	SourceSummary     = "SUMMARY"
	SourceDescription = "DESCRIPTION"
	SourceCategories  = "CATEGORIES"
	// SourceDefault marks an event without a hint: it asks for
	// Options.DefaultReplicas (the scaler's calendarReplicas).
	SourceDefault = "calendarReplicas"
)

var replicasRe = regexp.MustCompile(`(?i)\breplicas\s*=\s*([0-9]+(?:\.[0-9]+)?)`)

// readReplicas sets the event's replicas from its hint, first found of:
// X-MONTAGE-REPLICAS, "replicas=N" in SUMMARY or DESCRIPTION, the highest
// tier among CATEGORIES. A hint it cannot read is a warning.
func readReplicas(c *goical.Component, ev *event, name string) []string {
	var warns []string
	if p := c.Props.Get("X-MONTAGE-REPLICAS"); p != nil {
		v, err := strconv.ParseFloat(strings.TrimSpace(p.Value), 64)
		if err == nil && decide.CheckReplicas(v) == nil {
			ev.replicas, ev.hasReplicas, ev.source = v, true, SourceProperty
			return nil
		}
		warns = append(warns, fmt.Sprintf("event %s: X-MONTAGE-REPLICAS %q is not a number from 0 to %d; ignored", name, p.Value, decide.Ceiling))
	}
	for _, src := range []struct{ prop, source string }{{goical.PropSummary, SourceSummary}, {goical.PropDescription, SourceDescription}} {
		m := replicasRe.FindStringSubmatch(propText(c, src.prop))
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err == nil && decide.CheckReplicas(v) == nil {
			ev.replicas, ev.hasReplicas, ev.source = v, true, src.source
			return warns
		}
		warns = append(warns, fmt.Sprintf("event %s: %s replicas=%s is not a number from 0 to %d; ignored", name, src.prop, m[1], decide.Ceiling))
	}
	best := -1.0
	tier := ""
	n := 0
	for _, p := range c.Props.Values(goical.PropCategories) {
		for _, cat := range splitList(p.Value) {
			if n++; n > maxValueList {
				break
			}
			cat = strings.ToLower(strings.TrimSpace(unescape(cat)))
			if v, ok := tiers[cat]; ok && v > best {
				best, tier = v, cat
			}
		}
	}
	if best >= 0 {
		ev.replicas, ev.hasReplicas, ev.source = best, true, SourceCategories+":"+tier
	}
	return warns
}
