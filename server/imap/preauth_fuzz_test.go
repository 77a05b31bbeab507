package imap

import (
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzPreAuthSession sends arbitrary bytes to a connection that has not
// logged in (the part of the protocol anyone can reach): no panic, no
// hang, and the literal and line bounds hold (a session never reads a
// literal bigger than PreAuthLiteral into memory: such a command ends the
// connection).
func FuzzPreAuthSession(f *testing.F) {
	for _, s := range []string{
		"a CAPABILITY\r\nb NOOP\r\n",
		"a ID (\"name\" \"x\" \"version\" {3}\r\n1.0)\r\n",
		"a ID (\"name\" {1048576}\r\n",
		"a ID (\"k\" {9000+}\r\nxxxx\r\n",
		"a LOGIN {5}\r\nalice {8+}\r\npw-alice\r\nb SELECT INBOX\r\n",
		"a AUTHENTICATE PLAIN\r\nAGFsaWNlAHB3LWFsaWNl\r\n",
		"a AUTHENTICATE PLAIN =\r\n*\r\n",
		"a STARTTLS\r\nb LOGIN alice pw-alice\r\n",
		"a ID NIL\r\nb ENABLE IMAP4rev2\r\nc LOGOUT\r\n",
		"a LOGIN alice wrong\r\nb LOGIN \"alice\" \"pw-alice\"\r\nc FETCH 1 BODY[]\r\n",
	} {
		f.Add(s)
	}
	var panics atomic.Int32
	ts := startServer(f, func(o *Options, lo *ListenerOptions) {
		o.Logger = slog.New(panicCounter{&panics})
		o.Limits.PreAuthTimeout = 3 * time.Second
	})
	f.Fuzz(func(t *testing.T, s string) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			io.WriteString(nc, s)
			io.WriteString(nc, "\r\nz LOGOUT\r\n")
		}()
		io.Copy(io.Discard, nc)
		if n := panics.Load(); n > 0 {
			t.Fatalf("%d session panics", n)
		}
	})
}
