package lmtp

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// TestLMTPSlowData: message data must make progress within Timeout, not
// arrive whole within it (go-smtp sets its ReadTimeout once, before the
// DATA line; listen.TimeLimit turns it into a bound per read, as
// Postfix's smtpd_timeout and dovecot's idle timeout are). A message
// that trickles in for 4 Timeouts is delivered; one that stalls for a
// Timeout fails (451 4.3.0 for its recipient: go-smtp hands LMTPData the
// read error).
func TestLMTPSlowData(t *testing.T) {
	const timeout = 500 * time.Millisecond
	fd := &fakeDeliverer{}
	s := &Server{Deliverer: fd, Hostname: "mx.test", Timeout: timeout,
		Resolve: func(a string) (string, string, error) { return SplitAddress(a, []string{"example.com"}) }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	start := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		r := bufio.NewReader(c)
		for _, step := range []struct{ send, want string }{{"", "220 "}, {"LHLO mta.test\r\n", "250 "},
			{"MAIL FROM:<a@example.org>\r\n", "250 "}, {"RCPT TO:<alice@example.com>\r\n", "250 "}, {"DATA\r\n", "354 "}} {
			c.Write([]byte(step.send))
			if l := readReply(t, c, r); !strings.HasPrefix(l, step.want) {
				t.Fatalf("%q: %q", step.send, l)
			}
		}
		return c, r
	}
	c, r := start()
	t0 := time.Now()
	c.Write([]byte("Subject: slow\r\n\r\n"))
	for i := 0; i < 10; i++ {
		time.Sleep(timeout / 4) // 125 ms apart: 1.25 s in all
		c.Write([]byte("a line of a slow message\r\n"))
	}
	c.Write([]byte(".\r\n"))
	if l := readReply(t, c, r); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("slow message after %v: %q", time.Since(t0), l)
	}
	if el := time.Since(t0); el < 2*timeout {
		t.Fatalf("the message took only %v: the test shows nothing", el)
	}
	c, r = start()
	c.Write([]byte("Subject: stalled\r\n\r\nthen nothing"))
	t0 = time.Now()
	l := readReply(t, c, r)
	if el := time.Since(t0); !strings.HasPrefix(l, "451 4.3.0") || el < timeout || el > 4*timeout {
		t.Fatalf("stalled message: %q after %v", l, el)
	}
	if len(fd.got) != 1 {
		t.Fatalf("%d deliveries, want the slow message's", len(fd.got))
	}
}

// readReply reads one (possibly multi-line) reply's last line within 5 s.
func readReply(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reply: %v (%q)", err, l)
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n")
		}
	}
}
