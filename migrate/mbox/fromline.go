package mbox

import (
	"strconv"
	"strings"
	"time"
)

var weekdays = map[string]bool{"Mon": true, "Tue": true, "Wed": true, "Thu": true, "Fri": true, "Sat": true, "Sun": true}

var months = map[string]time.Month{
	"Jan": time.January, "Feb": time.February, "Mar": time.March, "Apr": time.April,
	"May": time.May, "Jun": time.June, "Jul": time.July, "Aug": time.August,
	"Sep": time.September, "Oct": time.October, "Nov": time.November, "Dec": time.December,
}

// zones are the zone names seen in From_ lines of the 1990s and 2000s.
var zones = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "WET": 0, "Z": 0,
	"BST": 1, "CET": 1, "MET": 1, "MEZ": 1, "WEST": 1,
	"CEST": 2, "MEST": 2, "MESZ": 2, "EET": 2, "EEST": 3,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
	"PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10, "JST": 9,
}

// ParseFromLine parses an mbox separator line ("From SENDER DATE", with or
// without its line end). DATE is asctime-style: "Wed Oct  7 12:00:00 2009"
// and the variants c-client accepts: seconds missing, a zone name or a
// numeric zone before or after the year, and a trailing UUCP
// "remote from HOST". Dates without a zone are in loc. ok is false when
// the line is not a valid separator (it is then body text).
func ParseFromLine(line []byte, loc *time.Location) (sender string, date time.Time, ok bool) {
	s := string(line)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	if !strings.HasPrefix(s, "From ") || len(s) > 1000 {
		return "", time.Time{}, false
	}
	f := strings.Fields(s[5:])
	if n := len(f); n >= 3 && f[n-3] == "remote" && f[n-2] == "from" {
		f = f[:n-3]
	}
	// The date is the last 5 to 7 fields; the sender is what precedes it
	// (it may be missing or contain spaces).
	for i := 0; i+5 <= len(f); i++ {
		if !weekdays[f[i]] {
			continue
		}
		if t, ok := parseDate(f[i:], loc); ok {
			return strings.Join(f[:i], " "), t, true
		}
	}
	return "", time.Time{}, false
}

// parseDate parses WDAY MON DAY HH:MM[:SS] followed by the year and up to
// two zone fields in any order; all of f must be used.
func parseDate(f []string, loc *time.Location) (time.Time, bool) {
	if len(f) < 5 || len(f) > 7 {
		return time.Time{}, false
	}
	mon, ok := months[f[1]]
	if !ok {
		return time.Time{}, false
	}
	day, err := strconv.Atoi(f[2])
	if err != nil || day < 1 || day > 31 || len(f[2]) > 2 {
		return time.Time{}, false
	}
	hms := strings.Split(f[3], ":")
	if len(hms) < 2 || len(hms) > 3 {
		return time.Time{}, false
	}
	var clock [3]int
	for i, p := range hms {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) > 2 || n < 0 || (i == 0 && n > 23) || (i > 0 && n > 60) {
			return time.Time{}, false
		}
		clock[i] = n
	}
	year := -1
	zone := loc
	nzones := 0
	for _, x := range f[4:] {
		switch {
		case len(x) == 4 && isDigits(x) && year < 0:
			year, _ = strconv.Atoi(x)
		case len(x) == 2 && isDigits(x) && year < 0:
			year, _ = strconv.Atoi(x)
			year += 1900
			if year < 1970 {
				year += 100
			}
		case (x[0] == '+' || x[0] == '-') && len(x) == 5 && isDigits(x[1:]) && nzones == 0:
			h, _ := strconv.Atoi(x[1:3])
			m, _ := strconv.Atoi(x[3:])
			off := (h*60 + m) * 60
			if x[0] == '-' {
				off = -off
			}
			zone = time.FixedZone(x, off)
			nzones++
		case isAlpha(x) && len(x) <= 5 && nzones < 2:
			if h, ok := zones[x]; ok && nzones == 0 {
				zone = time.FixedZone(x, h*3600)
			}
			nzones++
		default:
			return time.Time{}, false
		}
	}
	if year < 0 {
		return time.Time{}, false
	}
	t := time.Date(year, mon, day, clock[0], clock[1], clock[2], 0, zone)
	return t, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return s != ""
}

// FormatFromLine returns a From_ line (with "\n") for sender and date in
// asctime form, the way UW-IMAP writes it.
func FormatFromLine(sender string, date time.Time) string {
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	return "From " + sender + " " + date.Format("Mon Jan _2 15:04:05 2006") + "\n"
}
