package mbox

import (
	"bytes"
	"strings"
	"time"
)

// c-client (UW-IMAP's library) decides what starts a message with its
// VALID() test, which looks at fixed positions counted back from the end
// of the line and never at names; the internal date is then built from
// those positions into "dd-mmm-yyyy hh:mm:ss zzz" and read by
// mail_parse_date(). A line that passes VALID starts a message even if its
// date does not parse (the message then has the date c-client's cleared
// fields give: 1 Jan 1970 UTC, or the day it did parse at midnight).
// What follows reproduces both steps; the tests compare with c-client
// itself (migrate/cclienttest).

// MaxFromLine bounds a From_ line (c-client has no bound): a longer
// line is body, so that every separator fits in the reader's buffer.
const MaxFromLine = 1000

// validFrom applies VALID to line (with or without its line end). It
// returns the end of the date (the line end, before " remote from HOST"),
// ti, the offset from end of the space before the time, and zn, the
// offset of the space before the zone (0: no zone).
func validFrom(line []byte) (end, ti, zn int, ok bool) {
	if len(line) < 5 || string(line[:5]) != "From " {
		return 0, 0, 0, false
	}
	x := bytes.IndexByte(line, '\n')
	if x < 0 {
		x = len(line) // c-client adds the missing newline of a last line
	}
	if x > MaxFromLine {
		return 0, 0, 0, false
	}
	if bytes.IndexByte(line[:x], 0) >= 0 {
		return 0, 0, 0, false // c-client's scan for the line end stops at a NUL
	}
	if x > 0 && line[x-1] == '\r' {
		x--
	}
	at := func(i int) byte {
		if i < 0 || i >= len(line) {
			return 0
		}
		return line[i]
	}
	if x >= 41 {
		z := -1
		for at(x+z) != ' ' {
			z--
		}
		if i := x + z - 12; i >= 0 && string(line[i:x+z]) == " remote from" {
			x = i
		}
	}
	if x < 27 {
		return 0, 0, 0, false
	}
	switch {
	case at(x-5) == ' ':
		switch {
		case at(x-8) == ':':
			zn, ti = 0, -5
		case at(x-9) == ' ':
			ti, zn = -9, -9
		case at(x-11) == ' ' && (at(x-10) == '+' || at(x-10) == '-'):
			ti, zn = -11, -11
		}
	case at(x-4) == ' ':
		if at(x-9) == ' ' {
			zn, ti = -4, -9
		}
	case at(x-6) == ' ':
		if at(x-11) == ' ' && (at(x-5) == '+' || at(x-5) == '-') {
			zn, ti = -6, -11
		}
	}
	if ti == 0 || at(x+ti-3) != ':' {
		return 0, 0, 0, false
	}
	if at(x+ti-6) == ':' {
		ti -= 9
	} else {
		ti -= 6
	}
	if at(x+ti) != ' ' || at(x+ti-3) != ' ' || at(x+ti-7) != ' ' || at(x+ti-11) != ' ' {
		return 0, 0, 0, false
	}
	return x, ti, zn, true
}

// ParseFromLine parses an mbox separator line ("From SENDER DATE", with or
// without its line end) as c-client does: ok tells whether the line
// starts a message (VALID); date is the internal date c-client gives it
// (dates without a zone, or with a zone c-client does not know, are in
// loc's current offset, as c-client used the server's offset of the
// moment; a date it cannot parse gives what its cleared fields give);
// dateOK is false in that case.
func ParseFromLine(line []byte, loc *time.Location) (sender string, date time.Time, ok bool) {
	sender, date, _, ok = parseFrom(line, loc)
	return sender, date, ok
}

func parseFrom(line []byte, loc *time.Location) (sender string, date time.Time, dateOK, ok bool) {
	x, ti, zn, ok := validFrom(line)
	if !ok {
		return "", time.Time{}, false, false
	}
	sender = ""
	if start := x + ti - 11; start > 5 { // the space before the weekday
		sender = strings.TrimSpace(string(line[5:start]))
	}
	t := func(i int) byte { return line[x+i] }
	var d [27]byte
	d[2], d[6], d[20], d[11], d[14], d[17] = '-', '-', '-', ' ', ':', ':'
	d[0], d[1] = t(ti-2), t(ti-1)
	d[3], d[4], d[5] = t(ti-6), t(ti-5), t(ti-4)
	d[12], d[13] = t(ti+1), t(ti+2)
	d[15], d[16] = t(ti+4), t(ti+5)
	ti += 6
	if t(ti) == ':' {
		d[18], d[19] = t(ti+1), t(ti+2)
		ti += 3
	} else {
		d[18], d[19] = '0', '0'
	}
	if zn == ti {
		if c := t(zn + 1); c == '+' || c == '-' {
			ti += 6
		} else {
			ti += 4
		}
	}
	d[7], d[8], d[9], d[10] = t(ti+1), t(ti+2), t(ti+3), t(ti+4)
	z := []byte("LCL")
	if zn != 0 {
		z = line[x+zn+1:]
	}
	d[21], d[22], d[23] = z[0], z[1], z[2]
	n := 24
	if d[21] == '+' || d[21] == '-' {
		d[24], d[25] = z[3], z[4]
		d[20] = ' '
		n = 26
	}
	date, dateOK = parseCDate(d[:n], loc)
	return sender, date, dateOK, true
}

// FormatFromLine returns a From_ line (with "\n") for sender and date in
// asctime form, the way UW-IMAP writes it.
func FormatFromLine(sender string, date time.Time) string {
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	return "From " + sender + " " + date.Format("Mon Jan _2 15:04:05 2006") + "\n"
}
