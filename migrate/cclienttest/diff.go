package cclienttest

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Got is one message as another reader (e.g. dovecot, after mailmig's
// conversion) serves it.
type Got struct {
	UID uint32
	// Flags holds system flags and keywords, as IMAP lists them.
	Flags []string
	Date  time.Time
	// Text is the stored bytes; Diff compares CRLF(Text) with c-client's.
	Text []byte
}

// Diff compares every message c-client read with got (both in UID
// order) and returns one line per difference, naming the message by
// position and c-client's UID: count, UID, flags, keywords, internal date
// (to the second) and bytes (first differing offset). \Recent is not
// compared (mailmig carries no \Recent: it was per session in UW-IMAP).
func Diff(want *Folder, got []Got) []string {
	var d []string
	if len(want.Messages) != len(got) {
		d = append(d, fmt.Sprintf("c-client reads %d messages, the conversion holds %d", len(want.Messages), len(got)))
	}
	for i := 0; i < len(want.Messages) && i < len(got); i++ {
		w, g := want.Messages[i], got[i]
		name := fmt.Sprintf("message %d (c-client UID %d)", i+1, w.UID)
		if w.UID != g.UID {
			d = append(d, fmt.Sprintf("%s: UID %d, c-client %d", name, g.UID, w.UID))
		}
		var gsys, gkw []string
		for _, f := range g.Flags {
			if strings.HasPrefix(f, `\`) {
				if f != `\Recent` {
					gsys = append(gsys, f)
				}
			} else {
				gkw = append(gkw, f)
			}
		}
		sort.Strings(gsys)
		sort.Strings(gkw)
		if strings.Join(gsys, " ") != strings.Join(w.Flags, " ") {
			d = append(d, fmt.Sprintf("%s: flags %v, c-client %v", name, gsys, w.Flags))
		}
		if strings.Join(gkw, " ") != strings.Join(w.Keywords, " ") {
			d = append(d, fmt.Sprintf("%s: keywords %v, c-client %v", name, gkw, w.Keywords))
		}
		if !g.Date.Truncate(time.Second).Equal(w.Date) {
			d = append(d, fmt.Sprintf("%s: internal date %s, c-client %s (%s)", name, g.Date.UTC().Format(time.RFC3339), w.Date.Format(time.RFC3339), w.Zone))
		}
		if gt := CRLF(g.Text); !bytes.Equal(gt, w.Text) {
			d = append(d, fmt.Sprintf("%s: bytes differ: %s", name, firstDiff(gt, w.Text)))
		}
	}
	return d
}

// firstDiff describes where a and b (got, c-client) first differ.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	ctx := func(x []byte) string {
		lo, hi := i-20, i+40
		if lo < 0 {
			lo = 0
		}
		if hi > len(x) {
			hi = len(x)
		}
		if lo > hi {
			lo = hi
		}
		return fmt.Sprintf("%q", x[lo:hi])
	}
	return fmt.Sprintf("%d bytes, c-client %d; first difference at byte %d: %s, c-client %s", len(a), len(b), i, ctx(a), ctx(b))
}
