package lmtp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
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

// FuzzSession drives the LMTP command loop and DATA with arbitrary bytes
// after a valid transaction start: no panic, no hang, and nothing bigger
// than MaxMessageBytes (plus the trace fields) reaches delivery even when
// the bytes go to the temporary file (SpoolThreshold is tiny here).
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n.\r\n",
		"Subject: x\r\n\r\n..dot\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n",
		"a\r.\r\nb\n.\n" + strings.Repeat("y", 300) + "\r\n.\r\n",
		strings.Repeat("z", 5000) + "\r\n.\r\n",
		"\r\n.\r\nRSET\r\nLHLO again\r\nVRFY x\r\nBDAT 3 LAST\r\nabc",
	} {
		f.Add(s)
	}
	var panics atomic.Int32
	fd := &fakeDeliverer{}
	s := &Server{
		Deliverer:       fd,
		Hostname:        "mx.test",
		MaxMessageBytes: 4096,
		SpoolThreshold:  64,
		Timeout:         3 * time.Second,
		Logger:          slog.New(panicCounter{&panics}),
		Resolve: func(a string) (string, string, error) {
			return SplitAddress(a, []string{"example.com"})
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go s.Serve(ln)
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, data string) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			io.WriteString(nc, "LHLO fuzz\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
			io.WriteString(nc, data)
			io.WriteString(nc, "\r\n.\r\nQUIT\r\n")
		}()
		io.Copy(io.Discard, nc)
		if n := panics.Load(); n > 0 {
			t.Fatalf("%d session panics", n)
		}
		fd.mu.Lock()
		defer fd.mu.Unlock()
		for _, m := range fd.msgs {
			// Return-Path and Received are added to each copy.
			if !bytes.HasPrefix(m, []byte("Return-Path: ")) || len(m) > 4096+512 {
				t.Fatalf("delivered %d bytes, limit 4096 (+ trace fields): %.80q", len(m), m)
			}
		}
		fd.msgs, fd.got = nil, nil
	})
}
