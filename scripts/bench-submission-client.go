//go:build ignore

// bench-submission-client submits generated messages over STARTTLS (or
// implicit TLS) with AUTH PLAIN on N connections and prints messages per
// second. Every message must get a 250 reply; anything else aborts.
// With -sink it is instead the smarthost: it accepts -n messages, prints
// how long they took to arrive and exits.
//
//	go run scripts/bench-submission-client.go -addr 127.0.0.1:587 -user u -pass pw -to x@remote.test -conns 4 -n 2000
//	go run scripts/bench-submission-client.go -sink 127.0.0.1:2525 -n 2000
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"io"
	"net"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func main() {
	addr := flag.String("addr", "", "submission address host:port")
	implicit := flag.Bool("implicit", false, "TLS on connect (465) instead of STARTTLS")
	user := flag.String("user", "", "user")
	pass := flag.String("pass", "", "password")
	from := flag.String("from", "", "MAIL FROM (default USER@example.org)")
	to := flag.String("to", "", "comma-separated recipients")
	conns := flag.Int("conns", 1, "parallel connections")
	n := flag.Int("n", 1000, "messages")
	size := flag.Int("size", 4096, "message size in bytes")
	sink := flag.String("sink", "", "be a smarthost on this address instead and wait for -n messages")
	flag.Parse()
	if *sink != "" {
		runSink(*sink, *n)
		return
	}
	if *from == "" {
		*from = *user + "@example.org"
	}
	rcpts := strings.Split(*to, ",")
	body := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: bench\r\n\r\n", *from, rcpts[0])
	line := strings.Repeat("x", 70) + "\r\n"
	for len(body) < *size {
		body += line
	}
	tc := &tls.Config{InsecureSkipVerify: true} // the --data self-signed certificate
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *smtp.Client
			var err error
			if *implicit {
				c, err = smtp.DialTLS(*addr, tc)
			} else {
				c, err = smtp.DialStartTLS(*addr, tc)
			}
			if err != nil {
				log.Fatal(err)
			}
			defer c.Close()
			if err := c.Auth(sasl.NewPlainClient("", *user, *pass)); err != nil {
				log.Fatal(err)
			}
			for next.Add(1) <= int64(*n) {
				if err := c.SendMail(*from, rcpts, strings.NewReader(body)); err != nil {
					log.Fatal(err)
				}
			}
			c.Quit()
		}()
	}
	wg.Wait()
	d := time.Since(start)
	fmt.Printf("%d messages of %d bytes on %d connections in %.2fs: %.0f msgs/s\n", *n, len(body), *conns, d.Seconds(), float64(*n)/d.Seconds())
}

type sinkSession struct{ got func() }

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s sinkSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	s.got()
	return err
}

// runSink accepts messages until n arrived, then prints the time from
// the first to the last.
func runSink(addr string, n int) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	var count atomic.Int64
	var first time.Time
	var mu sync.Mutex
	done := make(chan struct{})
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return sinkSession{got: func() {
			mu.Lock()
			if first.IsZero() {
				first = time.Now()
			}
			mu.Unlock()
			if count.Add(1) == int64(n) {
				close(done)
			}
		}}, nil
	}))
	srv.Domain = "sink"
	go srv.Serve(ln)
	<-done
	d := time.Since(first)
	fmt.Printf("smarthost received %d messages in %.2fs after the first: %.0f msgs/s\n", n, d.Seconds(), float64(n)/d.Seconds())
	srv.Close()
}
