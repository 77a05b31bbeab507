package imap

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicCounter is a slog handler counting the session panics the
// connection's recover logs.
type panicCounter struct{ n *atomic.Int32 }

func (h panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.n.Add(1)
	}
	return nil
}
func (h panicCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicCounter) WithGroup(string) slog.Handler      { return h }

// FuzzSession sends arbitrary bytes as commands of a logged-in session
// with a selected mailbox holding messages; the session must neither
// panic nor hang, and the server must keep serving.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"c FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.10> BODYSTRUCTURE ENVELOPE)\r\n",
		"c UID SEARCH OR SEEN (NOT DELETED LARGER 3) SUBJECT hi\r\n",
		"c STORE 1 +FLAGS (\\Seen $x)\r\nd EXPUNGE\r\n",
		"c APPEND INBOX {5+}\r\nabcde\r\n",
		"c COPY 1:* Trash\r\nd UID MOVE 1 Trash\r\n",
		"c LIST \"\" *\r\nd STATUS INBOX (MESSAGES SIZE)\r\ne GETQUOTAROOT INBOX\r\n",
		"c SETACL INBOX bob lr\r\nd GETACL INBOX\r\ne MYRIGHTS INBOX\r\n",
		"c IDLE\r\nDONE\r\n",
		"c FETCH 1 BODY[1.2.MIME]\r\n{999999999+}\r\n",
		"c ENABLE QRESYNC\r\nd SELECT INBOX (QRESYNC (1 1 1:5 (1:2 1:2)))\r\ne UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)\r\n",
		"c STORE 1:* (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen)\r\nd SEARCH MODSEQ \"/flags/\\\\seen\" all 1\r\n",
		"c SEARCH RETURN (SAVE MIN) ALL\r\nd FETCH $ FLAGS\r\ne STATUS INBOX (HIGHESTMODSEQ)\r\n",
		"c SORT RETURN (MIN ALL) (REVERSE DATE SUBJECT DISPLAYFROM) UTF-8 OR SEEN 1:2\r\nd UID SORT (SIZE) KOI8-R TEXT x\r\n",
		"c THREAD REFERENCES UTF-8 ALL\r\nd UID THREAD ORDEREDSUBJECT US-ASCII 1:*\r\ne THREAD REFS UTF-8 ALL\r\n",
		"c APPEND INBOX CATENATE (TEXT {3+}\r\nab\n URL \"/INBOX/;UID=1/;SECTION=1.MIME\")\r\nd APPEND INBOX CATENATE (URL \"imap://x@y/%%/;UID=1\")\r\n",
		"c SEARCH RETURN (PARTIAL 1:2 COUNT) OLDER 5\r\nd SORT RETURN (PARTIAL 2:9) (SIZE) UTF-8 YOUNGER 9\r\ne FETCH 1:* (PREVIEW (LAZY))\r\nf LIST \"\" * RETURN (MYRIGHTS)\r\n",
		"c CREATE J (USE (\\Junk \\Sent))\r\nd CREATE K (USE ())\r\ne CREATE L (USE (\\X) FOO)\r\nf LIST (SPECIAL-USE) \"\" *\r\n",
		"c UID SEARCH RETURN (UPDATE) UNSEEN\r\nd SEARCH RETURN (UPDATE COUNT) ALL\r\ne CANCELUPDATE \"c\" \"x\"\r\nf CANCELUPDATE\r\ng CANCELUPDATE c\r\n",
		"c APPEND INBOX (\\Seen) {3+}\r\nabc \"01-Jan-2020 00:00:00 +0000\" ~{4+}\r\na\x00bc\r\n",
		"c FETCH 1:* (EMAILID THREADID)\r\nd SEARCH OR EMAILID M1 THREADID T-_9\r\ne STATUS INBOX (MAILBOXID)\r\nf LIST \"\" * RETURN (STATUS (MAILBOXID))\r\n",
	} {
		f.Add(s)
	}
	var panics atomic.Int32
	ts := startServer(f, func(o *Options, lo *ListenerOptions) {
		o.Logger = slog.New(panicCounter{&panics})
	})
	seed := func() {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			f.Fatal(err)
		}
		defer nc.Close()
		msg := testMessage("seed", "body\r\n")
		io.WriteString(nc, "a LOGIN alice pw-alice\r\nb CREATE Trash\r\n")
		for i := 0; i < 3; i++ {
			io.WriteString(nc, "c APPEND INBOX {"+itoa(len(msg))+"+}\r\n"+msg+"\r\n")
		}
		io.WriteString(nc, "z LOGOUT\r\n")
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, nc)
	}
	seed()
	f.Fuzz(func(t *testing.T, s string) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			io.WriteString(nc, "a LOGIN alice pw-alice\r\nb SELECT INBOX\r\n")
			io.WriteString(nc, s)
			io.WriteString(nc, "\r\nDONE\r\nz LOGOUT\r\n")
		}()
		io.Copy(io.Discard, nc)
		if n := panics.Load(); n > 0 {
			t.Fatalf("%d session panics", n)
		}
	})
}

func itoa(n int) string {
	return strconv.Itoa(n)
}
