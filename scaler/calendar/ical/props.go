package ical

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goical "github.com/emersion/go-ical"
)

// dt is a DATE or DATE-TIME value as written: wall clock plus how to place it.
type dt struct {
	wall   time.Time      // fields are the written ones, location UTC
	loc    *time.Location // TZID zone; nil: floating or date (Options.Zone)
	isUTC  bool
	isDate bool
}

func (d dt) instant(tz *time.Location) time.Time {
	switch {
	case d.isUTC:
		return d.wall
	case d.loc != nil:
		return resolve(d.wall, d.loc)
	}
	return resolve(d.wall, tz)
}

// zoneOf is where recurrences of d are computed.
func (d dt) zoneOf(tz *time.Location) *time.Location {
	switch {
	case d.isUTC:
		return time.UTC
	case d.loc != nil:
		return d.loc
	}
	return tz
}

func eventName(uid, summary string) string {
	if summary == "" {
		return fmt.Sprintf("UID %q", uid)
	}
	return fmt.Sprintf("%q (UID %q)", summary, uid)
}

func propText(c *goical.Component, name string) string {
	p := c.Props.Get(name)
	if p == nil {
		return ""
	}
	return unescape(p.Value)
}

// unescape undoes RFC 5545 TEXT escaping.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n', 'N':
				b.WriteByte('\n')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// splitList splits a multi-value property at commas not escaped.
func splitList(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case ',':
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	out = append(out, strings.TrimSpace(v[start:]))
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

func readDT(p *goical.Prop, v string, zones *zoneReader) (dt, error) {
	v = strings.TrimSpace(v)
	isDate := strings.EqualFold(p.Params.Get(goical.ParamValue), "DATE") || len(v) == 8
	if isDate {
		t, err := time.ParseInLocation("20060102", v, time.UTC)
		if err != nil || len(v) != 8 {
			return dt{}, fmt.Errorf("%q is not a DATE (YYYYMMDD)", v)
		}
		return dt{wall: t, isDate: true}, nil
	}
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		t, err := time.ParseInLocation("20060102T150405", v[:len(v)-1], time.UTC)
		if err != nil {
			return dt{}, fmt.Errorf("%q is not a DATE-TIME (YYYYMMDDTHHMMSSZ)", v)
		}
		return dt{wall: t, isUTC: true}, nil
	}
	t, err := time.ParseInLocation("20060102T150405", v, time.UTC)
	if err != nil {
		return dt{}, fmt.Errorf("%q is not a DATE-TIME (YYYYMMDDTHHMMSS)", v)
	}
	d := dt{wall: t}
	if tzid := p.Params.Get(goical.PropTimezoneID); tzid != "" {
		loc, err := zones.load(tzid)
		if err != nil {
			return dt{}, err
		}
		d.loc = loc
	}
	return d, nil
}

func readRDate(p *goical.Prop, v string, zones *zoneReader) (rdate, error) {
	if !strings.EqualFold(p.Params.Get(goical.ParamValue), "PERIOD") && !strings.Contains(v, "/") {
		d, err := readDT(p, v, zones)
		return rdate{at: d}, err
	}
	a, b, ok := strings.Cut(v, "/")
	if !ok {
		return rdate{}, errors.New("PERIOD needs start/end or start/duration")
	}
	start, err := readDT(p, a, zones)
	if err != nil {
		return rdate{}, err
	}
	if strings.HasPrefix(b, "P") || strings.HasPrefix(b, "+P") {
		days, exact, err := parseDuration(b)
		if err != nil {
			return rdate{}, err
		}
		return rdate{at: start, dur: time.Duration(days)*24*time.Hour + exact}, nil
	}
	end, err := readDT(p, b, zones)
	if err != nil {
		return rdate{}, err
	}
	return rdate{at: start, end: &end}, nil
}

// parseDuration reads an RFC 5545 duration: days and weeks are nominal
// (wall-clock days), hours, minutes and seconds exact.
func parseDuration(s string) (days int, exact time.Duration, err error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return 0, 0, fmt.Errorf("%q is not a duration such as PT1H or P1D", s)
	}
	s = s[1:]
	inTime := false
	for s != "" {
		if s[0] == 'T' {
			inTime, s = true, s[1:]
			continue
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 7 || i == len(s) {
			return 0, 0, fmt.Errorf("bad duration")
		}
		n, _ := strconv.Atoi(s[:i])
		unit := s[i]
		s = s[i+1:]
		switch {
		case !inTime && unit == 'W':
			days += 7 * n
		case !inTime && unit == 'D':
			days += n
		case inTime && unit == 'H':
			exact += time.Duration(n) * time.Hour
		case inTime && unit == 'M':
			exact += time.Duration(n) * time.Minute
		case inTime && unit == 'S':
			exact += time.Duration(n) * time.Second
		default:
			return 0, 0, fmt.Errorf("bad duration unit %q", unit)
		}
		if days > 3660 || exact > 3660*24*time.Hour {
			return 0, 0, fmt.Errorf("duration longer than ten years")
		}
	}
	if neg {
		return -days, -exact, nil
	}
	return days, exact, nil
}
