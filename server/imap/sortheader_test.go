package imap

import (
	"bufio"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
)

// sortHeaderOracle is what the sort keys were read with before
// readSortHeader: go-message's ReadHeader and Get, with a read buffer of
// size bytes (a line longer than the buffer at the end of the input is
// lost by both).
func sortHeaderOracle(raw string, size int) sortHeader {
	h, _ := textproto.ReadHeader(bufio.NewReaderSize(strings.NewReader(raw), size))
	return sortHeader{date: h.Get("Date"), messageID: h.Get("Message-Id"), references: h.Get("References"),
		inReplyTo: h.Get("In-Reply-To"), subject: h.Get("Subject")}
}

var sortHeaderSeeds = []string{
	"Subject: x\r\nDate: Wed, 07 Oct 2009 12:00:00 +0200\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n",
	"subject: first\nSUBJECT: second\nmessage-id:<a@b>\nReferences: <1@x>\n <2@x>\n\t<3@x>\n\nbody",
	" Subject: folded first line\nSubject: x\n\n",
	"From: a\nbad line\nSubject: after\n\n",
	"X: y\nSub ject: z\nSubject: ok\n\n",
	": empty key\nSubject: after empty key\n\n",
	"Subject :  spaced key  \r\n  continued  \r\n\r\n",
	"In-Reply-To: <p@q> <r@s>\r\nDate: 1 Jan 2000 00:00 GMT\r\n",
	"Subject: no end of line",
	"Subject: a\r\n \r\n b\r\n\r\n",
	"Subject: \xff\xfe\r\nMessage-Id: <\x00@x>\r\n\r\n",
	"Subject: line with a lone \r in it\n\n",
	"Date\x7f: x\nSubject: after a bad key byte\n\n",
	"",
	"\n\nSubject: after the blank line\n",
}

// TestReadSortHeader: the fields read as textproto.ReadHeader and Get
// give them, also for a header longer than the read buffer.
func TestReadSortHeader(t *testing.T) {
	long := "Subject: " + strings.Repeat("very long subject ", 1000) + "\nReferences: " + strings.Repeat("<1234567890@example.net>\n ", 500) + "<z@z>\n\n"
	for _, raw := range append(sortHeaderSeeds, long) {
		for _, size := range []int{16, 4096} {
			got, _ := readSortHeader(bufio.NewReaderSize(strings.NewReader(raw), size), nil)
			if want := sortHeaderOracle(raw, size); got != want {
				t.Errorf("%q (buffer %d):\n got %q\nwant %q", raw, size, got, want)
			}
		}
	}
}

// FuzzSortHeader: readSortHeader against go-message on any input.
func FuzzSortHeader(f *testing.F) {
	for _, s := range sortHeaderSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, size := range []int{16, 4096} {
			got, _ := readSortHeader(bufio.NewReaderSize(strings.NewReader(raw), size), make([]byte, 0, 3))
			if want := sortHeaderOracle(raw, size); got != want {
				t.Fatalf("%q (buffer %d):\n got %q\nwant %q", raw, size, got, want)
			}
		}
	})
}

// FuzzSentDate: the sent date with the usual-form shortcut is the one
// mail.ParseDate alone gives.
func FuzzSentDate(f *testing.F) {
	for _, s := range []string{
		"Wed, 07 Oct 2009 12:00:00 +0200", "Wed, 7 Oct 2009 12:00:00 -0000", "Wed, 07 Oct 09 12:00 +0200",
		"7 Oct 2009 12:00:00 GMT", "Wed, 07 Oct 2009 12:00:00 +0200 (CEST)", "Thu, 31 Feb 2009 12:00:00 +0200",
		"Wed, 07 Oct 2009 12:00:00 +020", "Sun, 07 Oct 2009 24:00:00 +2400", " Wed, 07 Oct 2009\r\n 12:00:00 +0200",
		"Wed, 07 Oct 2009 12:00:00 +0200x", "", "garbage",
	} {
		f.Add(s)
	}
	internal := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		want := internal
		if w := strings.TrimSpace(v); w != "" {
			if d, err := mail.ParseDate(unfold(w)); err == nil {
				want = d.UTC()
			}
		}
		if got := sentDateOf(v, internal); !got.Equal(want) {
			t.Fatalf("%q: %v, mail.ParseDate %v", v, got, want)
		}
	})
}
