package imap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore/dovecottest"
)

// dovecotCorpus are messages whose ENVELOPE and BODYSTRUCTURE mailmig must
// report the way dovecot does: clients moving from dovecot have them
// cached.
var dovecotCorpus = []string{
	// Plain text with encoded words and several addresses.
	"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.org>\n" +
		"To: a@example.org, \"Bee, B.\" <b@example.org>\nCc: c@example.net\n" +
		"Subject: =?iso-8859-1?q?Gr=FC=DFe?= aus Bonn\nDate: Wed, 07 Oct 2009 12:00:00 +0200\n" +
		"Message-ID: <m1@example.org>\nIn-Reply-To: <m0@example.org>\n\nHallo\nzwei Zeilen\n",
	// multipart/alternative.
	"From: a@example.org\nTo: b@example.org\nSubject: alt\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/alternative; boundary=\"b1\"\n\n" +
		"--b1\nContent-Type: text/plain; charset=us-ascii\n\nplain text\n" +
		"--b1\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n<p>html=C3=A4</p>\n" +
		"--b1--\n",
	// multipart/mixed with an attachment and a forwarded message.
	"From: a@example.org\nTo: b@example.org\nSubject: mixed\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\n\npreamble\n" +
		"--outer\nContent-Type: text/plain\n\nsee attached\n" +
		"--outer\nContent-Type: application/pdf; name=\"r.pdf\"\nContent-Disposition: attachment; filename=\"r.pdf\"\n" +
		"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n" +
		"--outer\nContent-Type: message/rfc822\n\nFrom: x@example.com\nSubject: inner\n\ninner body\n" +
		"--outer--\n",
	// 8-bit header text as old clients wrote it: UTF-8 and latin-1.
	"From: K\xc3\xb6nig <k@example.org>\nSubject: Gr\xc3\xbc\xc3\x9fe roh\nDate: Thu, 8 Oct 2009 09:00:00 +0000\n\nx\n",
	"From: K\xf6nig <k@example.org>\nTo: undisclosed-recipients:;\nSubject: Gr\xfc\xdfe latin-1\nDate: bogus date\n\nx\n",
	// Groups, comments, quoted local parts, a route, an address without domain.
	"From: \"Doe, J. (work)\" <j.doe@example.org> (Comment)\nTo: Team: a@example.org, \"B\\\"q\" <b@example.org>;, c@example.org\n" +
		"Cc: \"odd local\"@example.org, <@relay.example:r@example.org>, nodomain\nReply-To: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\nSubject: addresses\n\nx\n",
	// No MIME headers at all, no Date.
	"From: someone@example.org\nSubject: bare\n\nbody without mime\n",
}

// TestDovecotAgreesOnStructure compares mailmig's ENVELOPE and
// BODYSTRUCTURE with doveadm's imap.envelope and imap.bodystructure for
// the same Maildir.
func TestDovecotAgreesOnStructure(t *testing.T) {
	dovecottest.Require(t)
	ts := startServer(t)
	st := ts.store(t, "alice")
	f, err := st.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range dovecotCorpus {
		if _, err := f.Append(context.Background(), strings.NewReader(m), nil, time.Date(2009, 10, 7, 10, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN alice pw-alice\r\nb EXAMINE INBOX\r\nc UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)\r\n")
	var lines []string
	for i := 0; i < 100; i++ {
		l := rc.response()
		lines = append(lines, l)
		if strings.HasPrefix(l, "c ") {
			break
		}
	}
	ours := map[string][2]string{}
	re := regexp.MustCompile(`(?s)^\* \d+ FETCH \(UID (\d+) ENVELOPE (.*) BODYSTRUCTURE (.*)\)$`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			ours[m[1]] = [2]string{m[2], m[3]}
		}
	}
	if len(ours) != len(dovecotCorpus) {
		t.Fatalf("parsed %d FETCH responses from %q", len(ours), lines)
	}

	d := dovecottest.New(t, filepath.Join(ts.dir, "alice", "Maildir"))
	out, err := d.Run("-f", "json", "fetch", "uid imap.envelope imap.bodystructure", "mailbox", "INBOX", "ALL")
	if err != nil {
		t.Fatal(err)
	}
	var theirs []map[string]string
	if err := json.Unmarshal(out, &theirs); err != nil {
		t.Fatalf("doveadm output %q: %v", out, err)
	}
	// Sizes and internal dates.
	rc.send("d UID FETCH 1:* (RFC822.SIZE INTERNALDATE)\r\n")
	sizes := map[uint32]string{}
	const layout = "02-Jan-2006 15:04:05 -0700"
	for _, l := range rc.until("d ") {
		var seq, uid uint32
		var size int64
		var date string
		if n, _ := fmt.Sscanf(l, "* %d FETCH (UID %d RFC822.SIZE %d INTERNALDATE %q)", &seq, &uid, &size, &date); n == 4 {
			if d, err := time.Parse(layout, date); err == nil {
				date = d.UTC().Format(layout)
			}
			sizes[uid] = fmt.Sprintf("%d %s", size, date)
		}
	}
	dmsgs, err := d.Messages("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for _, dm := range dmsgs {
		want := fmt.Sprintf("%d %s", dm.VSize, dm.Received.UTC().Format(layout))
		if sizes[dm.UID] != want {
			t.Errorf("UID %d: mailmig RFC822.SIZE, INTERNALDATE %q; dovecot %q", dm.UID, sizes[dm.UID], want)
		}
	}
	for _, m := range theirs {
		o, ok := ours[m["uid"]]
		if !ok {
			t.Errorf("UID %s: not fetched by mailmig", m["uid"])
			continue
		}
		// doveadm prints each list without its outer parentheses.
		for i := range o {
			o[i] = strings.TrimSuffix(strings.TrimPrefix(o[i], "("), ")")
		}
		if a, b := normStructure(o[0]), normStructure(m["imap.envelope"]); a != b {
			t.Errorf("UID %s ENVELOPE\nmailmig: %s\ndovecot: %s", m["uid"], a, b)
		}
		if a, b := normStructure(o[1]), normStructure(m["imap.bodystructure"]); a != b {
			t.Errorf("UID %s BODYSTRUCTURE\nmailmig: %s\ndovecot: %s", m["uid"], a, b)
		}
	}
}

// normStructure makes the comparison ignore what clients ignore: the case
// of atoms and strings (dovecot keeps the message's case, mailmig sends
// types upper-case) and how a string is sent (quoted or literal).
func normStructure(s string) string {
	s = regexp.MustCompile(`\{\d+\}\r?\n`).ReplaceAllString(s, "")
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// response reads one response with its literals inline ("{n}" kept,
// then the n bytes).
func (rc *rawConn) response() string {
	rc.t.Helper()
	var b strings.Builder
	for {
		l := rc.line()
		b.WriteString(l)
		var n int
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}") {
			if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err == nil {
				buf := make([]byte, n)
				if _, err := io.ReadFull(rc.r, buf); err != nil {
					rc.t.Fatal(err)
				}
				b.WriteString("\r\n")
				b.Write(buf)
				continue
			}
		}
		return b.String()
	}
}
