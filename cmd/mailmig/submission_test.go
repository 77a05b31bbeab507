package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmig/server/outbound/outboundtest"
)

// subConfig is a configuration with untrusted loopback listeners (kept
// as written under --data), no trusted networks, a 1 MB size limit and a
// retry schedule of milliseconds, so the tests take seconds.
const subConfig = `
[limits]
message_size = "1MB"

[submission]
listeners = [
  { address = "127.0.0.1:0", tls = "starttls", trusted = false },
  { address = "127.0.0.1:0", tls = "implicit", trusted = false },
]
trusted_networks = []
smarthost_starttls = false
retry_intervals = ["300ms"]
retry_window = "%WINDOW%"

[managesieve]
listeners = [
  { address = "127.0.0.1:0", tls = "starttls", trusted = false },
]
`

// swaks runs Debian's swaks against addr and returns its transcript.
func swaks(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	requireTool(t, "swaks")
	host, port, _ := net.SplitHostPort(addr)
	full := append([]string{"--server", host, "--port", port, "--timeout", "20", "--helo", "client.test"}, args...)
	cmd := exec.Command("swaks", full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		}
		return out.String(), 0
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("swaks %v timed out\n%s", args, out.String())
	}
	return "", -1
}

// waitMaildir waits until a message in user's INBOX contains every one
// of wants and returns it.
func waitMaildir(t *testing.T, dataDir, user string, timeout time.Duration, wants ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, sub := range []string{"new", "cur"} {
			files, _ := filepath.Glob(filepath.Join(dataDir, "mail", user, "Maildir", sub, "*"))
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				ok := true
				for _, w := range wants {
					if !bytes.Contains(b, []byte(w)) {
						ok = false
					}
				}
				if ok {
					return string(b)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message with %q in %s's INBOX after %v", wants, user, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func TestSubmissionSwaks(t *testing.T) {
	requireTool(t, "swaks")
	sink := outboundtest.Start(t, outboundtest.Options{})
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	createUser(t, dir, "bob", "bob-pw")
	s := startServeConfig(t, dir, strings.Replace(subConfig, "%WINDOW%", "1h", 1), "--smarthost", sink.Addr)
	sub := s.Addr("submission")
	auth := []string{"--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-pw"}

	t.Run("auth before TLS refused", func(t *testing.T) {
		out, code := swaks(t, sub, append(auth, "--from", "alice@example.org", "--to", "carol@remote.test")...)
		if code == 0 || !strings.Contains(out, "Host did not advertise authentication") {
			t.Errorf("swaks AUTH without TLS: exit %d\n%s", code, out)
		}
		// And a client that tries anyway is told TLS is required.
		c, err := net.DialTimeout("tcp", sub, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		readReply := func() string {
			var last string
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if len(l) < 4 || l[3] != '-' {
					return l + last
				}
			}
		}
		readReply()
		c.Write([]byte("EHLO client.test\r\n"))
		if ehlo := readReply(); strings.Contains(ehlo, "AUTH") {
			t.Errorf("AUTH advertised before TLS: %s", ehlo)
		}
		c.Write([]byte("AUTH PLAIN AGFsaWNlAGFsaWNlLXB3\r\n"))
		if l := readReply(); !strings.HasPrefix(l, "523 5.7.10") {
			t.Errorf("AUTH in clear: %q", l)
		}
		c.Write([]byte("MAIL FROM:<alice@example.org>\r\n"))
		if l := readReply(); !strings.HasPrefix(l, "530 5.7.0") {
			t.Errorf("MAIL without AUTH from an untrusted network: %q", l)
		}
	})

	t.Run("auth after STARTTLS, relayed to the smarthost", func(t *testing.T) {
		out, code := swaks(t, sub, append(auth, "--tls", "--from", "alice@example.org", "--to", "carol@remote.test",
			"--header", "Subject: relay test one")...)
		if code != 0 || !strings.Contains(out, "235 2.0.0") || !strings.Contains(out, "250 2.0.0") {
			t.Fatalf("swaks with STARTTLS: exit %d\n%s", code, out)
		}
		msgs := sink.Wait(1, 10*time.Second)
		if !outboundtest.Contains(msgs, "Subject: relay test one") {
			t.Fatalf("smarthost did not receive the message: %+v", msgs)
		}
		m := msgs[0]
		if m.From != "alice@example.org" || len(m.To) != 1 || m.To[0] != "carol@remote.test" {
			t.Errorf("relayed envelope %q -> %q", m.From, m.To)
		}
		mustContain(t, "relayed message", string(m.Data), "by localhost (mailmig) with ESMTPSA")
	})

	t.Run("implicit TLS and AUTH LOGIN", func(t *testing.T) {
		out, code := swaks(t, s.Addr("submissions"), "--tls-on-connect", "--auth", "LOGIN", "--auth-user", "bob", "--auth-password", "bob-pw",
			"--from", "bob+lists@example.org", "--to", "alice@example.org", "--header", "Subject: local via 465")
		if code != 0 {
			t.Fatalf("swaks on 465: exit %d\n%s", code, out)
		}
		waitMaildir(t, dir, "alice", 10*time.Second, "Subject: local via 465")
	})

	t.Run("forged MAIL FROM refused", func(t *testing.T) {
		out, code := swaks(t, sub, append(auth, "--tls", "--from", "bob@example.org", "--to", "carol@remote.test")...)
		if code == 0 || !strings.Contains(out, "553 5.7.1") {
			t.Errorf("forged sender: exit %d\n%s", code, out)
		}
	})

	t.Run("wrong password refused", func(t *testing.T) {
		out, code := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "nope",
			"--from", "alice@example.org", "--to", "carol@remote.test")
		if code == 0 || !strings.Contains(out, "535 5.7.8") {
			t.Errorf("wrong password: exit %d\n%s", code, out)
		}
	})

	t.Run("over-size refused with 552 naming the server", func(t *testing.T) {
		body := filepath.Join(t.TempDir(), "big.txt")
		line := strings.Repeat("x", 76) + "\r\n"
		os.WriteFile(body, []byte(strings.Repeat(line, (1<<20)/len(line)+100)), 0o644)
		out, code := swaks(t, sub, append(auth, "--tls", "--from", "alice@example.org", "--to", "carol@remote.test", "--body", "@"+body)...)
		if code == 0 || !strings.Contains(out, "552 5.3.4 localhost: message exceeds 1 MB limit") {
			t.Errorf("over-size: exit %d\n%s", code, lastLines(out, 8))
		}
	})
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestSubmissionSmarthostDown: mail for a smarthost that is down is
// queued (durably, in the spool), retried on the configured schedule and
// delivered once the smarthost is back.
func TestSubmissionSmarthostDown(t *testing.T) {
	requireTool(t, "swaks")
	smarthost := outboundtest.FreeAddr(t)
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServeConfig(t, dir, strings.Replace(subConfig, "%WINDOW%", "1h", 1), "--smarthost", smarthost)
	out, code := swaks(t, s.Addr("submission"), "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-pw",
		"--from", "alice@example.org", "--to", "dave@remote.test", "--header", "Subject: waits for the smarthost")
	if code != 0 {
		t.Fatalf("swaks: exit %d\n%s", code, out)
	}
	queued, _ := filepath.Glob(filepath.Join(dir, "outbound", "queue", "*.json"))
	if len(queued) != 1 {
		t.Fatalf("spool holds %d entries, want 1", len(queued))
	}
	// Two failed attempts at least, then the smarthost comes up.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.Log(), "outbound: deferred") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries logged:\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	sink := outboundtest.Start(t, outboundtest.Options{Addr: smarthost})
	msgs := sink.Wait(1, 10*time.Second)
	if !outboundtest.Contains(msgs, "Subject: waits for the smarthost") {
		t.Fatalf("not delivered after the smarthost came back: %+v\n%s", msgs, s.Log())
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(dir, "outbound", "queue", "*"))
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool not emptied: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSubmissionBounce: after the retry window the sender gets an RFC 3464
// report in their INBOX saying which server failed and why; a permanent
// refusal bounces at once.
func TestSubmissionBounce(t *testing.T) {
	requireTool(t, "swaks")
	smarthost := outboundtest.FreeAddr(t)
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServeConfig(t, dir, strings.Replace(subConfig, "%WINDOW%", "1500ms", 1), "--smarthost", smarthost)
	send := func(to, subject string) {
		out, code := swaks(t, s.Addr("submission"), "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-pw",
			"--from", "alice@example.org", "--to", to, "--header", "Subject: "+subject)
		if code != 0 {
			t.Fatalf("swaks: exit %d\n%s", code, out)
		}
	}
	send("erin@remote.test", "never arrives")
	dsn := waitMaildir(t, dir, "alice", 15*time.Second, "Undelivered Mail Returned to Sender", "erin@remote.test")
	mustContain(t, "bounce", dsn,
		"Content-Type: multipart/report; report-type=delivery-status",
		"connect to smarthost "+smarthost,
		"Subject of your message: never arrives",
		"Action: failed",
		"Final-Recipient: rfc822; erin@remote.test",
		"Remote-MTA: dns; 127.0.0.1",
		"text/rfc822-headers")

	// The smarthost is back but refuses the recipient for good.
	outboundtest.Start(t, outboundtest.Options{Addr: smarthost, Rcpt: func(string) error { return outboundtest.ErrRefused }})
	send("frank@remote.test", "refused at once")
	dsn = waitMaildir(t, dir, "alice", 10*time.Second, "Undelivered Mail Returned to Sender", "frank@remote.test")
	mustContain(t, "bounce", dsn,
		// The relay by the name it greets with, not the address dialled
		// (issue 9 item 11).
		"sink.test refused the message: 550 5.1.1 no such user here",
		"Remote-MTA: dns; sink.test",
		"Status: 5.1.1",
		"Diagnostic-Code: smtp; 550 5.1.1 no such user here")
}

// TestSieveRedirectAndVacationReachSmarthost: scripts uploaded with
// sieve-connect run at delivery of submitted mail; the redirect and the
// vacation reply go out through the queue to the smarthost.
func TestSieveRedirectAndVacationReachSmarthost(t *testing.T) {
	requireTool(t, "swaks")
	requireTool(t, "sieve-connect")
	sink := outboundtest.Start(t, outboundtest.Options{})
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	createUser(t, dir, "bob", "bob-pw")
	// Default listeners (moved to trusted loopback by --data), default
	// trusted networks (loopback), a smarthost without TLS.
	s := startServeConfig(t, dir, "[submission]\nsmarthost_starttls = false\n", "--smarthost", sink.Addr)
	scripts := t.TempDir()
	activate := func(name, text string) {
		t.Helper()
		p := filepath.Join(scripts, name+".sieve")
		os.WriteFile(p, []byte(text), 0o644)
		if out, code := sieveConnect(t, s.Addr("managesieve"), "alice", "alice-pw", "--upload", "--localsieve", p, "--remotesieve", name); code != 0 {
			t.Fatalf("upload %s: exit %d\n%s", name, code, out)
		}
		if out, code := sieveConnect(t, s.Addr("managesieve"), "alice", "alice-pw", "--activate", "--remotesieve", name); code != 0 {
			t.Fatalf("activate %s: exit %d\n%s", name, code, out)
		}
	}

	activate("fwd", "redirect \"carol@remote.test\";\n")
	out, code := swaks(t, s.Addr("submission"), "--tls", "--auth", "PLAIN", "--auth-user", "bob", "--auth-password", "bob-pw",
		"--from", "bob@example.org", "--to", "alice@example.org", "--header", "Subject: please forward")
	if code != 0 {
		t.Fatalf("swaks: exit %d\n%s", code, out)
	}
	msgs := sink.Wait(1, 15*time.Second)
	if len(msgs) != 1 || !outboundtest.Contains(msgs, "Subject: please forward") {
		t.Fatalf("redirect did not reach the smarthost: %+v\n%s", msgs, s.Log())
	}
	if m := msgs[0]; m.From != "bob@example.org" || len(m.To) != 1 || m.To[0] != "carol@remote.test" {
		t.Errorf("redirect envelope %q -> %q", m.From, m.To)
	}

	activate("away", "require \"vacation\";\nvacation :days 1 :subject \"Away until Monday\" \"I am away.\";\n")
	// From outside: loopback is a trusted network in --data mode.
	out, code = swaks(t, s.Addr("submission"), "--from", "dora@remote.test", "--to", "alice@example.org", "--header", "Subject: are you there")
	if code != 0 {
		t.Fatalf("swaks: exit %d\n%s", code, out)
	}
	waitMaildir(t, dir, "alice", 10*time.Second, "Subject: are you there")
	msgs = sink.Wait(2, 15*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("no vacation reply at the smarthost: %d messages\n%s", len(msgs), s.Log())
	}
	m := msgs[1]
	if m.From != "" || len(m.To) != 1 || m.To[0] != "dora@remote.test" {
		t.Errorf("vacation envelope %q -> %q", m.From, m.To)
	}
	mustContain(t, "vacation reply", string(m.Data), "Subject: Away until Monday", "I am away.")
}

// TestSubmissionSmarthostReload: a smarthost changed in the configuration
// file applies on SIGHUP to mail already queued.
func TestSubmissionSmarthostReload(t *testing.T) {
	requireTool(t, "swaks")
	sink := outboundtest.Start(t, outboundtest.Options{})
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	base := strings.Replace(subConfig, "%WINDOW%", "1h", 1)
	withHost := func(addr string) string {
		return strings.Replace(base, "smarthost_starttls = false", "smarthost_starttls = false\nsmarthost = \""+addr+"\"", 1)
	}
	s := startServeConfig(t, dir, withHost(outboundtest.FreeAddr(t)))
	out, code := swaks(t, s.Addr("submission"), "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-pw",
		"--from", "alice@example.org", "--to", "gina@remote.test", "--header", "Subject: after reload")
	if code != 0 {
		t.Fatalf("swaks: exit %d\n%s", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Log(), "outbound: deferred") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt logged:\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.toml"), []byte(withHost(sink.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	if msgs := sink.Wait(1, 10*time.Second); !outboundtest.Contains(msgs, "Subject: after reload") {
		t.Fatalf("not relayed through the reloaded smarthost: %+v\n%s", msgs, s.Log())
	}
}
