//go:build ignore

// bench-lmtp-client delivers a generated spam/ham corpus over LMTP on N
// connections and prints deliveries per second. Every message must get a
// 250 reply; anything else aborts the run. Used by scripts/bench-lmtp
// against mailmig and dovecot-lmtpd alike.
//
//	go run scripts/bench-lmtp-client.go -addr 127.0.0.1:2424 -conns 8 -n 2000
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

func main() {
	addr := flag.String("addr", "", "LMTP address host:port (or a unix socket path)")
	conns := flag.Int("conns", 1, "parallel connections")
	n := flag.Int("n", 1000, "messages to deliver")
	size := flag.Int("size", 10240, "message size in bytes")
	users := flag.Int("users", 8, "recipients PREFIX0..PREFIX(N-1)")
	prefix := flag.String("prefix", "u", "recipient local-part prefix")
	domain := flag.String("domain", "example.org", "recipient domain")
	label := flag.String("label", "", "label printed with the result")
	flag.Parse()
	if *addr == "" {
		log.Fatal("-addr is required")
	}
	msgs := make([][]byte, *n)
	for i := range msgs {
		msgs[i] = makeMessage(i, *size)
	}
	work := make(chan int, *n)
	for i := 0; i < *n; i++ {
		work <- i
	}
	close(work)
	var done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, *conns)
	start := time.Now()
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker(*addr, *prefix, *domain, *users, msgs, work, &done); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errc)
	for err := range errc {
		log.Fatalf("%s: %v", *label, err)
	}
	fmt.Printf("%-8s conns=%d msgs=%d size=%d secs=%.2f rate=%.0f msg/s\n",
		*label, *conns, done.Load(), *size, el.Seconds(), float64(done.Load())/el.Seconds())
}

func worker(addr, prefix, domain string, users int, msgs [][]byte, work <-chan int, done *atomic.Int64) error {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	conn, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		return err
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("bench.test"); err != nil {
		return err
	}
	for i := range work {
		rcpt := fmt.Sprintf("%s%d@%s", prefix, i%users, domain)
		if err := c.Mail("sender@bench.example", nil); err != nil {
			return fmt.Errorf("message %d: MAIL: %w", i, err)
		}
		if err := c.Rcpt(rcpt, nil); err != nil {
			return fmt.Errorf("message %d: RCPT %s: %w", i, rcpt, err)
		}
		w, err := c.Data()
		if err != nil {
			return fmt.Errorf("message %d: DATA: %w", i, err)
		}
		if _, err := w.Write(msgs[i]); err != nil {
			return err
		}
		if _, err := w.CloseWithLMTPResponse(); err != nil {
			return fmt.Errorf("message %d to %s: %w", i, rcpt, err)
		}
		done.Add(1)
	}
	return c.Quit()
}

// makeMessage builds message i: every fourth one is spam by the site's
// rule (X-Spam-Level with five stars), the rest ham, padded to size.
func makeMessage(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender <sender@bench.example>\r\nTo: u%d@example.org\r\n", i)
	fmt.Fprintf(&b, "Subject: benchmark message %d\r\nMessage-ID: <bench-%d@bench.example>\r\n", i, i)
	b.WriteString("Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n")
	if i%4 == 0 {
		b.WriteString("X-Spam-Level: *******\r\nX-Spam-Status: Yes, score=7.1\r\n")
	} else {
		b.WriteString("X-Spam-Level: **\r\nX-Spam-Status: No, score=2.0\r\n")
	}
	b.WriteString("\r\n")
	line := 0
	for b.Len() < size-80 {
		fmt.Fprintf(&b, "Line %04d of message %d: the quick brown fox jumps over the lazy dog.\r\n", line, i)
		line++
	}
	return b.Bytes()
}

func init() { log.SetOutput(os.Stderr); log.SetFlags(0) }
