package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpPreAuthConfig: the pre-authentication (LMTP: pre-MAIL) bound 3 s,
// a started command must arrive within 1.5 s; LMTP on TCP too.
const smtpPreAuthConfig = `
[connections]
preauth_timeout = "3s"
command_timeout = "1500ms"
`

// closedAfter reads what the server still sends until it closes the
// connection (within 15 s) and returns those lines and when it closed.
func (c *rawConn) closedAfter(start time.Time) ([]string, time.Duration) {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.line(15 * time.Second)
		if l != "" {
			lines = append(lines, l)
		}
		if err != nil {
			if strings.Contains(err.Error(), "timeout") {
				c.t.Fatalf("connection still open after %v (read %q)", time.Since(start), lines)
			}
			return lines, time.Since(start)
		}
	}
}

// drip writes s one byte every 200 ms, over and over, until the server
// closes the connection or stop is closed.
func (c *rawConn) drip(s string, stop chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := io.WriteString(c.nc, s[i%len(s):i%len(s)+1]); err != nil {
				return
			}
		}
	}()
}

// submissionLogin does EHLO, STARTTLS and AUTH PLAIN on a fresh
// submission connection.
func submissionLogin(t *testing.T, addr, user, pass string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr, false)
	c.until("220 ")
	c.send("EHLO client.example\r\n")
	c.until("250 ")
	c.send("STARTTLS\r\n")
	c.until("220 ")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("STARTTLS handshake: %v", err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	c.send("EHLO client.example\r\n")
	c.until("250 ")
	c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "\r\n")
	if l := c.until("2"); !strings.HasPrefix(l, "235 ") {
		t.Fatalf("AUTH: %s", l)
	}
	return c
}

// TestSubmissionPreAuthTimeouts is issue 13 item 11 for submission
// (RFC 6409): a connection that has not authenticated within
// preauth_timeout of connecting is closed with 421 4.4.2 however it
// spends the time (silent, or dripping complete NOOPs a byte at a
// time); a command started but not complete within command_timeout ends
// the connection before and after login; an authenticated session stays
// past the pre-authentication bound.
func TestSubmissionPreAuthTimeouts(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	// Loopback is a trusted network here: a client from it needs no AUTH
	// to send, and its first MAIL ends the bound instead.
	// Port 465 too: a client that never starts its TLS handshake.
	cfg := strings.Replace(abuseConfig(smtpPreAuthConfig), "[submission]\n", "[submission]\ntrusted_networks = [\"127.0.0.1/32\"]\n", 1)
	cfg = strings.Replace(cfg, `[submission]
trusted_networks = ["127.0.0.1/32"]
listeners = [{ address = "127.0.0.1:0", tls = "starttls", trusted = false }]`, `[submission]
trusted_networks = ["127.0.0.1/32"]
listeners = [{ address = "127.0.0.1:0", tls = "starttls", trusted = false }, { address = "127.0.0.1:0", tls = "implicit", trusted = false }]`, 1)
	s := startServeConfig(t, dir, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Log())
		}
	})
	addr := s.Addr("submission")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()

	silent := dialRaw(t, addr, false)
	silent.until("220 ")
	start := time.Now()
	noTLS := dialRaw(t, s.Addr("submissions"), false) // raw TCP, no ClientHello
	// Complete NOOPs, one byte per 200 ms (1.2 s per command, within
	// command_timeout): never idle, never a slow command, never logged in.
	noops := dialRaw(t, addr, false)
	noops.until("220 ")
	noops.drip("NOOP\r\n", stop, &wg)
	// One command that never ends.
	endless := dialRaw(t, addr, false)
	endless.until("220 ")
	endless.drip("EHLO aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", stop, &wg)
	// Logged in: it outlives the pre-authentication bound.
	authed := submissionLogin(t, addr, "alice", "alice-pw-1")
	// A trusted network's transaction, begun before the bound.
	trusted := dialRaw(t, addr, false)
	trusted.until("220 ")
	trusted.send("EHLO app.example\r\n")
	trusted.until("250 ")
	trusted.send("MAIL FROM:<app@example.org>\r\n")
	if l, _ := trusted.line(10 * time.Second); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("MAIL from a trusted network: %q", l)
	}

	lines, el := endless.closedAfter(start)
	t.Logf("endless command: %q after %v", lines, el)
	if el < 1400*time.Millisecond || el > 2500*time.Millisecond || !hasPrefixLine(lines, "421 4.4.2") {
		t.Fatalf("endless command: %q after %v, want 421 4.4.2 after ~1.7s (first byte at 0.2s + 1.5s)", lines, el)
	}
	lines, el = silent.closedAfter(start)
	t.Logf("silent: %q after %v", lines, el)
	if el < 2800*time.Millisecond || el > 4*time.Second || !hasPrefixLine(lines, "421 4.4.2") {
		t.Fatalf("silent: %q after %v, want 421 4.4.2 after ~3s", lines, el)
	}
	lines, el = noops.closedAfter(start)
	t.Logf("dripping NOOPs: %q after %v", lines, el)
	if el < 2800*time.Millisecond || el > 4*time.Second || !hasPrefixLine(lines, "421 4.4.2") {
		t.Fatalf("dripping NOOPs: %q after %v, want 421 4.4.2 after ~3s", lines, el)
	}
	if n := strings.Count(strings.Join(lines, "\n"), "250 "); n < 1 {
		t.Fatalf("dripping NOOPs: no NOOP answered (%q): the drip never completed a command", lines)
	}
	lines, el = noTLS.closedAfter(start)
	t.Logf("port 465, no TLS handshake: closed after %v", el)
	if el < 2800*time.Millisecond || el > 4*time.Second {
		t.Fatalf("port 465 without a TLS handshake: %q, closed after %v, want ~3s", lines, el)
	}
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	authed.send("NOOP\r\n")
	if l, _ := authed.line(10 * time.Second); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("authenticated session after 4s: %q", l)
	}
	trusted.send("RCPT TO:<alice@example.org>\r\n")
	if l, _ := trusted.line(10 * time.Second); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("RCPT 4s into a trusted transaction: %q", l)
	}
	// After login a command must still arrive whole within
	// command_timeout. The part that arrived (all but CRLF) is not
	// acted on: go-smtp hands it over as a line, the session refuses it.
	start = time.Now()
	authed.send("MAIL FROM:<alice@example.org>")
	lines, el = authed.closedAfter(start)
	t.Logf("half command after login: %q after %v", lines, el)
	if el < 1400*time.Millisecond || el > 2500*time.Millisecond || !hasPrefixLine(lines, "421 4.4.2") || hasPrefixLine(lines, "250") {
		t.Fatalf("half command after login: %q after %v, want 421 4.4.2 after ~1.5s and no 250", lines, el)
	}
	log := s.Log()
	for _, want := range []string{`bound=preauth`, `bound=command`} {
		if !strings.Contains(log, "submission: connection timed out") || !strings.Contains(log, want) {
			t.Fatalf("log does not say which bound ended a connection (%s):\n%s", want, log)
		}
	}
}

// TestLMTPPreMailTimeouts is item 11 for LMTP (RFC 2033), whose client is
// a trusted MTA and has no AUTH: the bound before a transaction is
// preauth_timeout from connecting and again from the end of each
// transaction (an MTA's cached connection sends its next MAIL within
// seconds: Postfix holds an idle one at most 2 s, TestPostfixLMTPReuse);
// a connection inside a transaction is not cut by it; a command must
// arrive whole within command_timeout.
func TestLMTPPreMailTimeouts(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig(smtpPreAuthConfig))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Log())
		}
	})
	addr := s.Addr("lmtp")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()

	silent := dialRaw(t, addr, false)
	silent.until("220 ")
	start := time.Now()
	noops := dialRaw(t, addr, false)
	noops.until("220 ")
	noops.drip("NOOP\r\n", stop, &wg)
	endless := dialRaw(t, addr, false)
	endless.until("220 ")
	endless.drip("LHLO aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", stop, &wg)
	// A transaction begun before the bound: RCPT and DATA after it.
	tx := dialRaw(t, addr, false)
	tx.until("220 ")
	tx.send("LHLO mta.example\r\n")
	tx.until("250 ")
	tx.send("MAIL FROM:<sender@example.org>\r\n")
	tx.until("250 ")

	lines, el := endless.closedAfter(start)
	if el < 1400*time.Millisecond || el > 2500*time.Millisecond || !hasPrefixLine(lines, "421 4.4.2") {
		t.Fatalf("endless command: %q after %v, want 421 4.4.2 after ~1.7s", lines, el)
	}
	for name, c := range map[string]*rawConn{"silent": silent, "dripping NOOPs": noops} {
		lines, el := c.closedAfter(start)
		t.Logf("%s: %q after %v", name, lines, el)
		if el < 2800*time.Millisecond || el > 4*time.Second || !hasPrefixLine(lines, "421 4.4.2") {
			t.Fatalf("%s: %q after %v, want 421 4.4.2 after ~3s", name, lines, el)
		}
	}
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	tx.send("RCPT TO:<alice@example.org>\r\n")
	if l, _ := tx.line(10 * time.Second); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("RCPT 4s into a transaction: %q", l)
	}
	tx.send("DATA\r\n")
	tx.until("354 ")
	tx.send("Subject: kept\r\n\r\nbody\r\n.\r\n")
	if l, _ := tx.line(10 * time.Second); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("DATA: %q", l)
	}
	// The transaction ended: the bound runs again from now.
	start = time.Now()
	lines, el = tx.closedAfter(start)
	if el < 2800*time.Millisecond || el > 4*time.Second || !hasPrefixLine(lines, "421 4.4.2") {
		t.Fatalf("after the transaction: %q after %v, want 421 4.4.2 after ~3s", lines, el)
	}
	if log := s.Log(); !strings.Contains(log, "bound=pre-MAIL") || !strings.Contains(log, "bound=command") {
		t.Fatalf("log does not say which bound ended a connection:\n%s", log)
	}
}

func hasPrefixLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
