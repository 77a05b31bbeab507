package sieve

import (
	"fmt"
	"net/mail"
	"strconv"
	"time"
)

// dateTest runs date and currentdate (RFC 5260 §4, §5).
func (r *run) dateTest(f *frame, t *test) (bool, error) {
	var dates []time.Time
	if t.kind == tCurrentdate {
		now := time.Now
		if r.in.Now != nil {
			now = r.in.Now
		}
		dates = append(dates, now())
	} else {
		for _, n := range t.names {
			for _, v := range r.msg.values(lower(r.expand(f, n)), t.index, t.last) {
				if d, err := mail.ParseDate(v); err == nil {
					dates = append(dates, d)
				}
			}
		}
	}
	part := lower(r.expand(f, t.datePart))
	if !dateParts[part] {
		return false, nil
	}
	var vals []string
	for _, d := range dates {
		switch {
		case t.zone != nil:
			z := r.expand(f, t.zone)
			if !validZone(z) {
				continue
			}
			d = d.In(zoneOf(z))
		case t.origZone:
		default:
			d = d.In(time.Local)
		}
		vals = append(vals, datePart(d, part))
	}
	return r.matchValues(f, t.m, vals, t.keys)
}

func zoneOf(z string) *time.Location {
	h, _ := strconv.Atoi(z[1:3])
	m, _ := strconv.Atoi(z[3:5])
	off := h*3600 + m*60
	if z[0] == '-' {
		off = -off
	}
	return time.FixedZone(z, off)
}

func datePart(d time.Time, part string) string {
	switch part {
	case "year":
		return fmt.Sprintf("%04d", d.Year())
	case "month":
		return fmt.Sprintf("%02d", int(d.Month()))
	case "day":
		return fmt.Sprintf("%02d", d.Day())
	case "date":
		return d.Format("2006-01-02")
	case "julian":
		// Modified Julian Day: days since 1858-11-17.
		y, m, day := d.Date()
		base := time.Date(1858, 11, 17, 0, 0, 0, 0, time.UTC)
		return strconv.Itoa(int(time.Date(y, m, day, 0, 0, 0, 0, time.UTC).Sub(base).Hours() / 24))
	case "hour":
		return fmt.Sprintf("%02d", d.Hour())
	case "minute":
		return fmt.Sprintf("%02d", d.Minute())
	case "second":
		return fmt.Sprintf("%02d", d.Second())
	case "time":
		return d.Format("15:04:05")
	case "iso8601":
		return d.Format("2006-01-02T15:04:05-07:00")
	case "std11":
		return d.Format("Mon, 02 Jan 2006 15:04:05 -0700")
	case "zone":
		return d.Format("-0700")
	case "weekday":
		return strconv.Itoa(int(d.Weekday()))
	}
	return ""
}
