package imap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCatenateLimits: a CATENATE message (RFC 4469) is bounded by the
// APPEND limit as it is assembled, part by part, TEXT literals included
// (a synchronizing one is refused before it is sent, a non-synchronizing
// one read and dropped with the rest of the command); the session goes
// on, a failed MULTIAPPEND appends nothing, and no temporary file stays
// in tmp/.
func TestCatenateLimits(t *testing.T) {
	ts := startServer(t, func(o *Options, _ *ListenerOptions) { o.AppendLimit = 1000 })
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN alice pw-alice\r\n")
	rc.until("a OK")
	msg := "Subject: seed\r\n\r\n" + strings.Repeat("x", 780) + "\r\n"
	rc.send("s APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	rc.until("s OK")
	cases := []struct{ name, cmd, want string }{
		{"sync TEXT over the limit", "b APPEND INBOX CATENATE (TEXT {2000}\r\n", "b NO [TOOBIG]"},
		{"non-sync TEXT over the limit", "c APPEND INBOX CATENATE (TEXT {2000+}\r\n" + strings.Repeat("y", 2000) + " TEXT {3+}\r\nabc)\r\n", "c NO [TOOBIG]"},
		{"two TEXT parts over the limit", "d APPEND INBOX CATENATE (TEXT {600+}\r\n" + strings.Repeat("y", 600) + " TEXT {600+}\r\n" + strings.Repeat("z", 600) + ")\r\n", "d NO [TOOBIG]"},
		{"URL and TEXT over the limit", "e APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" TEXT {300+}\r\n" + strings.Repeat("y", 300) + ")\r\n", "e NO [TOOBIG]"},
		{"MULTIAPPEND, the second fails", "f APPEND INBOX CATENATE (TEXT {12+}\r\nSubject: a\r\n URL \"/INBOX/;UID=1/;SECTION=TEXT\") CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1\")\r\n", "f NO [TOOBIG]"},
		{"within the limit", "g APPEND INBOX CATENATE (TEXT {12+}\r\nSubject: a\r\n URL \"/INBOX/;UID=1/;SECTION=TEXT\")\r\n", "g OK [APPENDUID"},
	}
	for _, c := range cases {
		rc.send(c.cmd)
		tag := c.cmd[:2]
		got := rc.until(tag)
		if l := got[len(got)-1]; !strings.HasPrefix(l, c.want) {
			t.Errorf("%s: %q, want %q", c.name, l, c.want)
		}
		rc.send("n NOOP\r\n")
		if l := rc.until("n "); !strings.HasPrefix(l[len(l)-1], "n OK") {
			t.Fatalf("%s: the session did not go on: %q", c.name, l)
		}
	}
	rc.send("x STATUS INBOX (MESSAGES)\r\n")
	if got := rc.until("x "); !strings.Contains(strings.Join(got, "\n"), "(MESSAGES 2)") {
		t.Errorf("after the cases: %q, want 2 messages (the seed and g's)", got)
	}
	rc.send("w SELECT INBOX\r\n")
	rc.until("w OK")
	rc.send("y FETCH 2 BODY.PEEK[]\r\n")
	got := strings.Join(rc.until("y "), "\n")
	if !strings.Contains(got, "Subject: a\n"+strings.Repeat("x", 780)) {
		t.Errorf("the catenated message: %q", got)
	}
	tmp, err := os.ReadDir(filepath.Join(ts.dir, "alice", "Maildir", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tmp {
		if strings.HasPrefix(e.Name(), "catenate-") {
			t.Errorf("tmp/ holds %s", e.Name())
		}
	}
}
