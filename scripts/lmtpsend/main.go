// Command lmtpsend delivers one message over LMTP, for the demo: it needs
// nothing but Go (the demo must run where swaks is not installed).
//
//	lmtpsend -addr 127.0.0.1:2424 -from a@example.org -to b@example.org \
//	  -header "Subject: hi" -body "text"
//
// It exits non-zero unless every recipient got a 2xx reply.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	addr := flag.String("addr", "", "LMTP server host:port")
	from := flag.String("from", "", "envelope sender")
	to := flag.String("to", "", "envelope recipient")
	body := flag.String("body", "", "message body")
	var headers headerList
	flag.Var(&headers, "header", `a header line, "Name: value" (repeatable)`)
	flag.Parse()
	if *addr == "" || *to == "" {
		fmt.Fprintln(os.Stderr, "usage: lmtpsend -addr HOST:PORT -from SENDER -to RCPT [-header H]... [-body TEXT]")
		os.Exit(2)
	}
	if err := send(*addr, *from, *to, headers, *body); err != nil {
		fmt.Fprintln(os.Stderr, "lmtpsend:", err)
		os.Exit(1)
	}
}

func send(addr, from, to string, headers []string, body string) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "Date: %s\r\nMessage-ID: <%d.lmtpsend@localhost>\r\n", time.Now().Format(time.RFC1123Z), time.Now().UnixNano())
	for _, h := range headers {
		msg.WriteString(h + "\r\n")
	}
	if !hasHeader(headers, "To") {
		msg.WriteString("To: " + to + "\r\n")
	}
	msg.WriteString("\r\n" + strings.ReplaceAll(body, "\n", "\r\n") + "\r\n")
	return c.SendMail(from, []string{to}, strings.NewReader(msg.String()))
}

func hasHeader(headers []string, name string) bool {
	for _, h := range headers {
		if k, _, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return true
		}
	}
	return false
}
