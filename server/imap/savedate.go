package imap

import (
	"strconv"
	"strings"
	"time"

	"mailmig/mailstore"
)

// SAVEDATE (RFC 8514): the FETCH item SAVEDATE and the SEARCH keys
// SAVEDBEFORE, SAVEDON, SAVEDSINCE and SAVEDATESUPPORTED.
//
// A message's save date is when its file was written into the folder:
// the seconds at the start of its Maildir file name ("SECS.M..."), which
// APPEND, COPY, delivery and conversion set to the time they write the
// file and which flag changes keep. It is sent in UTC, as dovecot does.
// A file whose name does not start with a time (hand-made) has none:
// SAVEDATE NIL, and no SAVED* key matches it (RFC 8514 §4.1, §4.2).

func init() {
	extensionCaps = append(extensionCaps, "SAVEDATE") // RFC 8514, savedate.go
}

// saveDate returns mi's save date; ok is false when its name has none.
func saveDate(mi *mailstore.MessageInfo) (time.Time, bool) {
	secs, _, _ := strings.Cut(mi.Key, ".")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

// writeSaveDate writes the SAVEDATE FETCH item (RFC 8514 §4.1).
func (c *conn) writeSaveDate(mi *mailstore.MessageInfo) {
	c.w.raw("SAVEDATE ")
	if d, ok := saveDate(mi); ok {
		c.w.dateTime(d)
	} else {
		c.w.raw("NIL")
	}
}

// matchSaveDate evaluates the SAVED* search keys (RFC 8514 §4.2): the
// date of the save date, as BEFORE/ON/SINCE take INTERNALDATE's.
func matchSaveDate(op string, date time.Time, mi *mailstore.MessageInfo) bool {
	d, ok := saveDate(mi)
	if !ok {
		return false
	}
	switch op {
	case "SAVEDATESUPPORTED":
		return true
	case "SAVEDBEFORE":
		return dayOf(d).Before(date)
	case "SAVEDON":
		return dayOf(d).Equal(date)
	}
	return !dayOf(d).Before(date) // SAVEDSINCE
}
