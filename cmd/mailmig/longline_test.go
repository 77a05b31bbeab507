package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sendSMTP sends one message over SMTP (lmtp=false) or LMTP and returns
// the server's error, if any.
func sendSMTP(t *testing.T, addr string, lmtp bool, from, to string, msg []byte) error {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var c *smtp.Client
	if lmtp {
		c = smtp.NewClientLMTP(conn)
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c.SendMail(from, []string{to}, bytes.NewReader(msg))
}

// TestLongLinesStored: lines far beyond RFC 5322's 998 octets (real mail
// has them; dovecot's LMTP stores them) are stored byte for byte over LMTP
// and submission; a line over delivery.MaxLineLength is refused with a
// permanent 554 5.6.0, never a temporary error (or a reset connection)
// that the MTA retries for days and then bounces.
func TestLongLinesStored(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pass-1")
	s := startServe(t, dir)
	for _, proto := range []string{"lmtp", "submission"} {
		for _, n := range []int{2500, 64 << 10, 900 << 10} {
			tag := proto
			line := strings.Repeat("0123456789abcdef", n/16)
			msg := []byte("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: long " + proto + "\r\nMessage-ID: <" + tag + "-" + strconv.Itoa(n) + "@test>\r\n\r\n" + line + "\r\nend\r\n")
			if err := sendSMTP(t, s.Addr(proto), proto == "lmtp", "bob@example.org", "alice@example.org", msg); err != nil {
				t.Fatalf("%s, a %d-byte line: %v\n%s", proto, n, err, s.Log())
			}
			f := waitFileWith(t, dir, "alice", "<"+tag+"-"+strconv.Itoa(n)+"@test>")
			got, _ := os.ReadFile(f)
			if !bytes.Contains(got, []byte("\r\n\r\n"+line+"\r\nend\r\n")) && !bytes.Contains(got, []byte("\n\n"+line+"\nend\n")) {
				t.Fatalf("%s: the %d-byte line was not stored byte for byte", proto, n)
			}
		}
		huge := []byte("From: bob@example.org\r\nSubject: huge\r\n\r\n" + strings.Repeat("y", 2<<20) + "\r\n")
		err := sendSMTP(t, s.Addr(proto), proto == "lmtp", "bob@example.org", "alice@example.org", huge)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 554 || se.EnhancedCode != (smtp.EnhancedCode{5, 6, 0}) {
			t.Fatalf("%s, a 2 MiB line: %v, want a permanent 554 5.6.0", proto, err)
		}
	}
}

// waitFileWith waits for a message file of user containing substr.
func waitFileWith(t *testing.T, dir, user, substr string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if f := fileHas(t, folderFiles(t, dir, user, ""), substr); f != "" {
			return f
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no message with %q for %s", substr, user)
	return ""
}
