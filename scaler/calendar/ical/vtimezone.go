package ical

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goical "github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// zoneReader resolves a feed's TZIDs once each. A TZID that is neither an
// IANA nor a Windows name (Exchange's display names such as "(UTC+01:00)
// Amsterdam, Berlin, …", "Customized Time Zone") is matched through the
// feed's own VTIMEZONE block to an IANA zone with the same transitions.
type zoneReader struct {
	cache map[string]*time.Location
	vtz   map[string]*goical.Component
}

func (z *zoneReader) load(tzid string) (*time.Location, error) {
	if loc, ok := z.cache[tzid]; ok {
		if loc == nil {
			return nil, fmt.Errorf("TZID %q is neither an IANA nor a Windows zone name, nor described by a usable VTIMEZONE", tzid)
		}
		return loc, nil
	}
	if len(z.cache) >= 1000 {
		// A feed naming more zones than any calendar needs gets no more lookups.
		return nil, fmt.Errorf("TZID %q: more than 1000 distinct zones in one feed", tzid)
	}
	loc, err := LoadZone(tzid)
	if err != nil {
		if c, ok := z.vtz[tzid]; ok {
			loc, err = matchVTimezone(tzid, c)
		}
	}
	z.cache[tzid] = loc
	if err != nil || loc == nil {
		return nil, fmt.Errorf("TZID %q is neither an IANA nor a Windows zone name, nor described by a usable VTIMEZONE", tzid)
	}
	return loc, nil
}

// transition is one change of UTC offset described by a VTIMEZONE.
type transition struct {
	at       time.Time
	from, to int // seconds east of UTC
}

// sampleYears are the years a VTIMEZONE's rules are compared in.
var sampleYears = []int{2024, 2025, 2026, 2027}

// matchVTimezone finds the IANA zone whose offsets agree with every
// transition c describes in the sample years. A block without
// transitions is a fixed offset.
func matchVTimezone(tzid string, c *goical.Component) (*time.Location, error) {
	var ts []transition
	fixed, haveFixed := 0, false
	for _, sub := range c.Children {
		if sub.Name != "STANDARD" && sub.Name != "DAYLIGHT" {
			continue
		}
		from, err1 := parseOffset(propValue(sub, "TZOFFSETFROM"))
		to, err2 := parseOffset(propValue(sub, "TZOFFSETTO"))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("VTIMEZONE %q: bad TZOFFSETFROM/TZOFFSETTO", tzid)
		}
		if sub.Name == "STANDARD" {
			fixed, haveFixed = to, true
		}
		start, err := time.ParseInLocation("20060102T150405", propValue(sub, "DTSTART"), time.UTC)
		if err != nil {
			return nil, fmt.Errorf("VTIMEZONE %q: bad DTSTART", tzid)
		}
		rv := propValue(sub, "RRULE")
		if rv == "" {
			continue
		}
		opt, err := rrule.StrToROptionInLocation(strings.ToUpper(rv), time.UTC)
		if err != nil || opt.Freq != rrule.YEARLY {
			return nil, fmt.Errorf("VTIMEZONE %q: unsupported RRULE %q", tzid, rv)
		}
		f := dateFilter{r: opt, s: start}
		for _, y := range sampleYears {
			days, _ := f.period(y - start.Year())
			for _, d := range days {
				wall := d.Add(time.Duration(start.Hour())*time.Hour + time.Duration(start.Minute())*time.Minute)
				ts = append(ts, transition{at: wall.Add(-time.Duration(from) * time.Second), from: from, to: to})
			}
		}
	}
	if len(ts) == 0 {
		if !haveFixed {
			return nil, fmt.Errorf("VTIMEZONE %q: no STANDARD offset", tzid)
		}
		return time.FixedZone(tzid, fixed), nil
	}
	candidates := make([]string, 0, len(windowsZones))
	for _, iana := range windowsZones {
		candidates = append(candidates, iana)
	}
	slices.Sort(candidates)
	candidates = slices.Compact(candidates)
	for _, name := range candidates {
		loc, err := time.LoadLocation(name)
		if err != nil {
			continue
		}
		ok := true
		for _, t := range ts {
			_, before := t.at.Add(-time.Minute).In(loc).Zone()
			_, after := t.at.Add(time.Minute).In(loc).Zone()
			if before != t.from || after != t.to {
				ok = false
				break
			}
		}
		if ok {
			return loc, nil
		}
	}
	return nil, fmt.Errorf("VTIMEZONE %q: no known zone has its transitions", tzid)
}

func propValue(c *goical.Component, name string) string {
	if p := c.Props.Get(name); p != nil {
		return strings.TrimSpace(p.Value)
	}
	return ""
}

// parseOffset reads a UTC offset such as +0100, -0430 or +053000.
func parseOffset(s string) (int, error) {
	if len(s) != 5 && len(s) != 7 || (s[0] != '+' && s[0] != '-') {
		return 0, fmt.Errorf("bad UTC offset %q", s)
	}
	n := 0
	parts := []int{}
	for i := 1; i+2 <= len(s); i += 2 {
		v, err := strconv.Atoi(s[i : i+2])
		if err != nil {
			return 0, fmt.Errorf("bad UTC offset %q", s)
		}
		parts = append(parts, v)
	}
	n = parts[0]*3600 + parts[1]*60
	if len(parts) == 3 {
		n += parts[2]
	}
	if s[0] == '-' {
		n = -n
	}
	return n, nil
}
