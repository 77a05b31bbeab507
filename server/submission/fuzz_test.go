package submission

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicCounter counts logged panics (go-smtp recovers a session's panic
// and logs it through ErrorLog).
type panicCounter struct{ n *atomic.Int32 }

func (h panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(strings.ToLower(r.Message), "panic") {
		h.n.Add(1)
	}
	return nil
}
func (h panicCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicCounter) WithGroup(string) slog.Handler      { return h }

// FuzzSession drives the submission command loop and DATA with arbitrary
// bytes from a trusted network: no panic, no hang, and whatever is queued
// for relaying or delivered has CRLF line ends only (no bare CR or LF to
// smuggle an end of DATA) and respects the size limit.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n.\r\n",
		"Subject: x\r\n\r\na\r.\rMAIL FROM:<e@x>\r\n\n.\n\r.\r\nDATA\r\n.\r\n",
		"\r\n.\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n\n\n\r\r.\r\n",
		strings.Repeat("w", 3000) + "\r\n.\r\n",
		"\r\n.\r\nAUTH PLAIN =\r\nVRFY x\r\nBDAT 2 LAST\r\nab",
	} {
		f.Add(s)
	}
	var panics atomic.Int32
	fx := start(f, func(s *Server) {
		s.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		s.MaxMessageBytes = 8192
		s.SpoolThreshold = 64
		s.Log = slog.New(panicCounter{&panics})
	})
	check := func(t *testing.T, what string, m []byte) {
		if len(m) > 8192+1024 {
			t.Fatalf("%s: %d bytes, limit 8192 (+ trace fields)", what, len(m))
		}
		for i, c := range m {
			if c == '\r' && (i+1 >= len(m) || m[i+1] != '\n') || c == '\n' && (i == 0 || m[i-1] != '\r') {
				t.Fatalf("%s: bare line end at byte %d: %q", what, i, m)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data string) {
		nc, err := net.Dial("tcp", fx.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			io.WriteString(nc, "EHLO fuzz\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<carol@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
			io.WriteString(nc, data)
			io.WriteString(nc, "\r\n.\r\nQUIT\r\n")
		}()
		io.Copy(io.Discard, nc)
		if n := panics.Load(); n > 0 {
			t.Fatalf("%d session panics", n)
		}
		fx.queue.mu.Lock()
		for _, m := range fx.queue.got {
			check(t, "relayed", m.msg)
		}
		fx.queue.got = nil
		fx.queue.mu.Unlock()
		fx.local.mu.Lock()
		for _, m := range fx.local.got {
			check(t, "delivered", m.msg)
		}
		fx.local.got = nil
		fx.local.mu.Unlock()
	})
}
