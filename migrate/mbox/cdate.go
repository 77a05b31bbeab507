package mbox

import "time"

// maxYear is the last year c-client's message cache can hold (a 7-bit
// field counted from 1970).
const maxYear = 1970 + 127

// cZones are the zone names c-client's mail_parse_date knows (as built
// on Debian: no BST, NST or the like); other names mean local time.
var cZones = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
	"MET": 60, "EET": 120, "JST": 540,
	"ADT": -180, "AST": -240, "EDT": -240, "EST": -300, "CDT": -300,
	"CST": -360, "MDT": -360, "MST": -420, "PDT": -420, "PST": -480,
	"YDT": -480, "YST": -540, "HST": -600,
}

// militaryZone gives the offset in hours of a one-letter zone as c-client
// reads it (A-M east, N-Y west, J unused, Z UTC).
func militaryZone(c byte) (int, bool) {
	switch {
	case c >= 'A' && c <= 'I':
		return int(c-'A') + 1, true
	case c >= 'K' && c <= 'M':
		return int(c-'K') + 10, true
	case c >= 'N' && c <= 'Y':
		return -(int(c-'N') + 1), true
	case c == 'Z':
		return 0, true
	}
	return 0, false
}

// strtoul reads an unsigned number the way C's strtoul does (leading
// white space, an optional sign); next is where it stopped (i when no
// digits were found). Values saturate instead of wrapping.
func strtoul(s []byte, i int) (v uint64, next int) {
	j := i
	for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\v' || s[j] == '\f' || s[j] == '\r') {
		j++
	}
	neg := false
	if j < len(s) && (s[j] == '+' || s[j] == '-') {
		neg = s[j] == '-'
		j++
	}
	k := j
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		if v < 1<<60 {
			v = v*10 + uint64(s[k]-'0')
		}
		k++
	}
	if k == j {
		return 0, i
	}
	if neg && v != 0 {
		v = 1 << 63 // C wraps to a huge value: invalid in every check here
	}
	return v, k
}

func isAlphaByte(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigitByte(c byte) bool { return c >= '0' && c <= '9' }

var monthCodes = map[string]time.Month{
	"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
	"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12,
}

// ParseCDate reads an IMAP-style date ("dd-mmm-yyyy hh:mm:ss +zzzz") as
// c-client's mail_parse_date does; ok is false where c-client fails.
func ParseCDate(b []byte, loc *time.Location) (t time.Time, ok bool) {
	return parseCDate(b, loc)
}

// parseCDate reads an IMAP-style date as c-client's mail_parse_date does
// and returns the time c-client's cache then holds: on failure the fields
// set so far (day, month, year, time), the rest zero (month and day 0 count
// as 1), zone UTC. Unknown zones are loc's offset now.
func parseCDate(in []byte, loc *time.Location) (time.Time, bool) {
	s := make([]byte, len(in))
	for i, c := range in {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		s[i] = c
	}
	if n := bytesIndexNUL(s); n >= 0 {
		s = s[:n]
	}
	at := func(i int) byte {
		if i < 0 || i >= len(s) {
			return 0
		}
		return s[i]
	}
	var day, mon, year, hh, mm, ss uint64
	zone := 0
	result := func(ok bool) (time.Time, bool) {
		y := int(year) + 1970
		if year == 0 && !ok && mon == 0 {
			y = 1970
		}
		m, d := int(mon), int(day)
		if m == 0 {
			m = 1
		}
		if d == 0 {
			d = 1
		}
		t := time.Date(y, time.Month(m), d, int(hh), int(mm), int(ss), 0, time.FixedZone("", zone*60))
		return t, ok
	}
	if len(s) == 0 {
		return result(false)
	}
	i := 0
	if isAlphaByte(at(0)) && isAlphaByte(at(1)) && isAlphaByte(at(2)) && at(3) == ',' && at(4) == ' ' {
		i = 5
	}
	for at(i) == ' ' {
		i++
	}
	m, i := strtoul(s, i)
	if m == 0 {
		return result(false)
	}
	var d, y uint64
	switch at(i) {
	case '/':
		i++
		if !isDigitByte(at(i)) {
			return result(false)
		}
		d, i = strtoul(s, i)
		if d == 0 || at(i) != '/' || !isDigitByte(at(i+1)) {
			return result(false)
		}
		y, i = strtoul(s, i+1)
		if i != len(s) {
			return result(false)
		}
	case ' ', '-':
		if at(i) == ' ' {
			for at(i+1) == ' ' {
				i++
			}
		}
		d = m
		if len(s)-i < 5 {
			return result(false)
		}
		mo, known := monthCodes[string(s[i+1:i+4])]
		if !known {
			return result(false)
		}
		m = uint64(mo)
		if at(i+4) == at(i) {
			i += 5
		} else {
			delim := at(i)
			i += 4
			for isAlphaByte(at(i)) {
				i++
			}
			if at(i) != delim {
				return result(false)
			}
			i++
		}
		for at(i) == ' ' {
			i++
		}
		if !isDigitByte(at(i)) {
			return result(false)
		}
		y, i = strtoul(s, i)
		if i != len(s) && at(i) != ' ' {
			return result(false)
		}
	default:
		return result(false)
	}
	if d > 31 || m > 12 {
		return result(false)
	}
	if y < 49 {
		y += 2000
	} else if y < 999 {
		y += 1900
	}
	if y < 1970 || y > maxYear {
		return result(false)
	}
	day, mon, year = d, m, y-1970
	if i >= len(s) {
		zone = localOffset(loc)
		return result(true)
	}
	h, j := strtoul(s, i+1)
	if at(j) != ':' {
		return result(false)
	}
	mi, j := strtoul(s, j+1)
	var sec uint64
	if at(j) == ':' {
		sec, j = strtoul(s, j+1)
	}
	if h > 23 || mi > 59 || sec > 60 {
		return result(false)
	}
	hh, mm, ss = h, mi, sec
	i = j
	name := ""
	switch at(i) {
	case ' ':
		for at(i+1) == ' ' {
			i++
		}
		if !isAlphaByte(at(i + 1)) {
			i++
			west := at(i) == '-'
			if west || at(i) == '+' {
				i++
			}
			if isDigitByte(at(i)) && isDigitByte(at(i+1)) && isDigitByte(at(i+2)) && at(i+2) < '6' && isDigitByte(at(i+3)) {
				zone = int(at(i)-'0')*600 + int(at(i+1)-'0')*60 + int(at(i+2)-'0')*10 + int(at(i+3)-'0')
				if west {
					zone = -zone
				}
			}
			return result(true)
		}
		fallthrough
	case '-':
		rest := s[i+1:]
		switch {
		case len(rest) == 0:
			name = "Z"
		case len(rest) <= 3:
			name = string(rest)
		}
	}
	if len(name) == 1 {
		if h, ok := militaryZone(name[0]); ok {
			zone = h * 60
			return result(true)
		}
	} else if off, ok := cZones[name]; ok {
		zone = off
		return result(true)
	}
	zone = localOffset(loc)
	return result(true)
}

// localOffset is loc's offset from UTC now, in minutes (what c-client
// used for a date without a zone it knows).
func localOffset(loc *time.Location) int {
	_, off := time.Now().In(loc).Zone()
	return off / 60
}

func bytesIndexNUL(s []byte) int {
	for i, c := range s {
		if c == 0 {
			return i
		}
	}
	return -1
}
