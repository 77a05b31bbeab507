package lmtp

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestRejectReplyLines: a multi-line reject reason gives a reply whose
// every line carries the enhanced code (RFC 2034 §3) — one line, since
// go-smtp prefixes the first line with the recipient — and a non-ASCII
// reason is sent as ASCII (RFC 5321 §4.2), as encoded words.
func TestRejectReplyLines(t *testing.T) {
	_, _, addr := startServer(t, "tcp")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func() []string {
		var lines []string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v (so far %q)", err, lines)
			}
			lines = append(lines, strings.TrimRight(l, "\r\n"))
			if len(l) >= 4 && l[3] == ' ' {
				return lines
			}
		}
	}
	reply()
	for _, cmd := range []string{"LHLO client", "MAIL FROM:<bob@example.org>", "RCPT TO:<multiline@example.com>", "DATA"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		reply()
	}
	fmt.Fprintf(c, "Subject: x\r\n\r\nbody\r\n.\r\n")
	lines := reply()
	if len(lines) != 1 {
		t.Fatalf("reply %q, want one line", lines)
	}
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		if !strings.HasPrefix(l, "550"+sep+"5.7.1 <multiline@example.com> Nicht hier.") {
			t.Errorf("line %d %q lacks 550%s5.7.1", i, l, sep)
		}
		for _, b := range []byte(l) {
			if b >= 0x80 {
				t.Errorf("line %d %q is not ASCII", i, l)
				break
			}
		}
	}
	if !strings.Contains(lines[0], "=?utf-8?q?Gr=C3=BC=C3=9Fe") {
		t.Errorf("non-ASCII text %q not encoded", lines[0])
	}
}
