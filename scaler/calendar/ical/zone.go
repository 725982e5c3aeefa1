package ical

import (
	"fmt"
	"strings"
	"time"

	// A calendar's TZIDs must resolve the same everywhere, also where the
	// system has no /usr/share/zoneinfo (the scaler image).
	_ "time/tzdata"
)

// windowsZones maps the Windows zone names Outlook and Exchange write as
// TZID to IANA names (CLDR windowsZones.xml, territory "001").
var windowsZones = map[string]string{
	"Dateline Standard Time":          "Etc/GMT+12",
	"UTC-11":                          "Etc/GMT+11",
	"Hawaiian Standard Time":          "Pacific/Honolulu",
	"Alaskan Standard Time":           "America/Anchorage",
	"Pacific Standard Time (Mexico)":  "America/Tijuana",
	"Pacific Standard Time":           "America/Los_Angeles",
	"US Mountain Standard Time":       "America/Phoenix",
	"Mountain Standard Time (Mexico)": "America/Mazatlan",
	"Mountain Standard Time":          "America/Denver",
	"Central America Standard Time":   "America/Guatemala",
	"Central Standard Time":           "America/Chicago",
	"Central Standard Time (Mexico)":  "America/Mexico_City",
	"Canada Central Standard Time":    "America/Regina",
	"SA Pacific Standard Time":        "America/Bogota",
	"Eastern Standard Time (Mexico)":  "America/Cancun",
	"Eastern Standard Time":           "America/New_York",
	"US Eastern Standard Time":        "America/Indiana/Indianapolis",
	"Venezuela Standard Time":         "America/Caracas",
	"Paraguay Standard Time":          "America/Asuncion",
	"Atlantic Standard Time":          "America/Halifax",
	"Central Brazilian Standard Time": "America/Cuiaba",
	"SA Western Standard Time":        "America/La_Paz",
	"Pacific SA Standard Time":        "America/Santiago",
	"Newfoundland Standard Time":      "America/St_Johns",
	"E. South America Standard Time":  "America/Sao_Paulo",
	"Argentina Standard Time":         "America/Argentina/Buenos_Aires",
	"SA Eastern Standard Time":        "America/Cayenne",
	"Greenland Standard Time":         "America/Nuuk",
	"Montevideo Standard Time":        "America/Montevideo",
	"UTC-02":                          "Etc/GMT+2",
	"Azores Standard Time":            "Atlantic/Azores",
	"Cape Verde Standard Time":        "Atlantic/Cape_Verde",
	"UTC":                             "Etc/UTC",
	"GMT Standard Time":               "Europe/London",
	"Greenwich Standard Time":         "Atlantic/Reykjavik",
	"Morocco Standard Time":           "Africa/Casablanca",
	"W. Europe Standard Time":         "Europe/Berlin",
	"Central Europe Standard Time":    "Europe/Budapest",
	"Romance Standard Time":           "Europe/Paris",
	"Central European Standard Time":  "Europe/Warsaw",
	"W. Central Africa Standard Time": "Africa/Lagos",
	"Jordan Standard Time":            "Asia/Amman",
	"GTB Standard Time":               "Europe/Bucharest",
	"Middle East Standard Time":       "Asia/Beirut",
	"Egypt Standard Time":             "Africa/Cairo",
	"E. Europe Standard Time":         "Europe/Chisinau",
	"Syria Standard Time":             "Asia/Damascus",
	"South Africa Standard Time":      "Africa/Johannesburg",
	"FLE Standard Time":               "Europe/Kyiv",
	"Israel Standard Time":            "Asia/Jerusalem",
	"Kaliningrad Standard Time":       "Europe/Kaliningrad",
	"Namibia Standard Time":           "Africa/Windhoek",
	"Arabic Standard Time":            "Asia/Baghdad",
	"Turkey Standard Time":            "Europe/Istanbul",
	"Arab Standard Time":              "Asia/Riyadh",
	"Belarus Standard Time":           "Europe/Minsk",
	"Russian Standard Time":           "Europe/Moscow",
	"E. Africa Standard Time":         "Africa/Nairobi",
	"Iran Standard Time":              "Asia/Tehran",
	"Arabian Standard Time":           "Asia/Dubai",
	"Azerbaijan Standard Time":        "Asia/Baku",
	"Georgian Standard Time":          "Asia/Tbilisi",
	"Caucasus Standard Time":          "Asia/Yerevan",
	"Afghanistan Standard Time":       "Asia/Kabul",
	"West Asia Standard Time":         "Asia/Tashkent",
	"Ekaterinburg Standard Time":      "Asia/Yekaterinburg",
	"Pakistan Standard Time":          "Asia/Karachi",
	"India Standard Time":             "Asia/Kolkata",
	"Sri Lanka Standard Time":         "Asia/Colombo",
	"Nepal Standard Time":             "Asia/Kathmandu",
	"Central Asia Standard Time":      "Asia/Almaty",
	"Bangladesh Standard Time":        "Asia/Dhaka",
	"Myanmar Standard Time":           "Asia/Yangon",
	"SE Asia Standard Time":           "Asia/Bangkok",
	"N. Central Asia Standard Time":   "Asia/Novosibirsk",
	"North Asia Standard Time":        "Asia/Krasnoyarsk",
	"China Standard Time":             "Asia/Shanghai",
	"North Asia East Standard Time":   "Asia/Irkutsk",
	"Singapore Standard Time":         "Asia/Singapore",
	"W. Australia Standard Time":      "Australia/Perth",
	"Taipei Standard Time":            "Asia/Taipei",
	"Ulaanbaatar Standard Time":       "Asia/Ulaanbaatar",
	"Tokyo Standard Time":             "Asia/Tokyo",
	"Korea Standard Time":             "Asia/Seoul",
	"Yakutsk Standard Time":           "Asia/Yakutsk",
	"Cen. Australia Standard Time":    "Australia/Adelaide",
	"AUS Central Standard Time":       "Australia/Darwin",
	"E. Australia Standard Time":      "Australia/Brisbane",
	"AUS Eastern Standard Time":       "Australia/Sydney",
	"West Pacific Standard Time":      "Pacific/Port_Moresby",
	"Tasmania Standard Time":          "Australia/Hobart",
	"Vladivostok Standard Time":       "Asia/Vladivostok",
	"Magadan Standard Time":           "Asia/Magadan",
	"Central Pacific Standard Time":   "Pacific/Guadalcanal",
	"New Zealand Standard Time":       "Pacific/Auckland",
	"UTC+12":                          "Etc/GMT-12",
	"Fiji Standard Time":              "Pacific/Fiji",
	"Tonga Standard Time":             "Pacific/Tongatapu",
	"Samoa Standard Time":             "Pacific/Apia",
	"Line Islands Standard Time":      "Pacific/Kiritimati",
}

// LoadZone resolves a TZID: an IANA name, a Windows name (Outlook,
// Exchange), or a prefixed IANA name such as Mozilla's
// "/mozilla.org/20050126_1/Europe/Berlin". "Local" is refused: the
// machine's own zone must not change what a calendar means.
func LoadZone(name string) (*time.Location, error) {
	name = strings.Trim(strings.TrimSpace(name), `"`)
	switch {
	case name == "" || strings.EqualFold(name, "local"):
		return nil, fmt.Errorf("ical: time zone %q: not a named zone", name)
	case strings.EqualFold(name, "utc") || strings.EqualFold(name, "gmt") || name == "Z":
		return time.UTC, nil
	}
	if iana, ok := windowsZones[name]; ok {
		return time.LoadLocation(iana)
	}
	if loc, err := time.LoadLocation(name); err == nil {
		return loc, nil
	}
	// Prefixed names: IANA names have at most three parts, so only the
	// last three separators can start one.
	if len(name) > 200 {
		return nil, fmt.Errorf("ical: unknown time zone %q", name)
	}
	tried := 0
	for i := len(name) - 2; i >= 0 && tried < 3; i-- {
		if name[i] != '/' {
			continue
		}
		tried++
		if suffix := name[i+1:]; strings.Contains(suffix, "/") {
			if loc, err := time.LoadLocation(suffix); err == nil {
				return loc, nil
			}
		}
	}
	return nil, fmt.Errorf("ical: unknown time zone %q", name)
}

// resolve turns a wall-clock time (its fields read as they are, its own
// location ignored) into an instant in loc the way RFC 5545 says: a time in
// a DST gap uses the offset before the gap (02:30 becomes 03:30 summer
// time), a time in an overlap is its first occurrence.
func resolve(wall time.Time, loc *time.Location) time.Time {
	y, mo, d := wall.Date()
	h, mi, s := wall.Clock()
	u := time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	if loc == time.UTC {
		return u
	}
	_, offBefore := u.Add(-36 * time.Hour).In(loc).Zone()
	_, offAfter := u.Add(36 * time.Hour).In(loc).Zone()
	c1 := u.Add(-time.Duration(offBefore) * time.Second)
	c2 := u.Add(-time.Duration(offAfter) * time.Second)
	valid := func(c time.Time) bool {
		l := c.In(loc)
		ly, lmo, ld := l.Date()
		lh, lmi, ls := l.Clock()
		return ly == y && lmo == mo && ld == d && lh == h && lmi == mi && ls == s
	}
	v1, v2 := valid(c1), valid(c2)
	switch {
	case v1 && v2:
		if c2.Before(c1) {
			return c2
		}
		return c1
	case v1:
		return c1
	case v2:
		return c2
	}
	// In a gap: the offset in force before it.
	return c1
}
