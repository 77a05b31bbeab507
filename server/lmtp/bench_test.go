package lmtp

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"mailmig/server/delivery"
)

// BenchmarkLMTPDeliver delivers 10 KB messages (one in four spam) over 8
// LMTP connections into real Maildirs with fsync, like scripts/bench-lmtp
// without the dovecot comparison; b.N is the number of messages.
func BenchmarkLMTPDeliver(b *testing.B) {
	root := b.TempDir()
	d := &delivery.Deliverer{
		MaildirFor: func(user string) (string, error) { return filepath.Join(root, user, "Maildir"), nil },
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hostname:   "bench.example",
	}
	s := &Server{Deliverer: d, Hostname: "bench.example", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	body := strings.Repeat("Line of the benchmark message: the quick brown fox jumps over the lazy dog.\r\n", 130)
	const conns = 8
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			cl := smtp.NewClientLMTP(conn)
			defer cl.Close()
			for i := range work {
				spam := ""
				if i%4 == 0 {
					spam = "X-Spam-Level: *******\r\n"
				}
				msg := fmt.Sprintf("From: a@example.org\r\nSubject: m%d\r\n%s\r\n%s", i, spam, body)
				if err := cl.SendMail("a@example.org", []string{fmt.Sprintf("u%d@example.org", i%8)}, strings.NewReader(msg)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
