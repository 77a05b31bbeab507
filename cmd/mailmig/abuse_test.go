package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests of issue 13 ("hold up under abuse") through the real binary with
// untrusted listeners: connection limits, pre-auth memory, literal
// bounds, timeouts and write deadlines.

// abuseConfig has untrusted IMAP (STARTTLS and implicit TLS), submission
// and ManageSieve listeners on loopback, and extra lines (e.g. a
// [connections] section).
func abuseConfig(extra string) string {
	return `
[imap]
listeners = [
  { address = "127.0.0.1:0", tls = "starttls", trusted = false },
  { address = "127.0.0.1:0", tls = "implicit", trusted = false },
]
[submission]
listeners = [{ address = "127.0.0.1:0", tls = "starttls", trusted = false }]
[managesieve]
listeners = [{ address = "127.0.0.1:0", tls = "starttls", trusted = false }]
[metrics]
listen = "127.0.0.1:0"
` + extra
}

// rawConn is a line-oriented client for attacks no library would send.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string, implicitTLS bool) *rawConn {
	t.Helper()
	var nc net.Conn
	var err error
	if implicitTLS {
		nc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		nc, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("send %.40q: %v", s, err)
	}
}

// line reads one line (without CRLF) within d; err at EOF or timeout.
func (c *rawConn) line(d time.Duration) (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	l, err := c.br.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// until reads lines until one starts with prefix and returns it.
func (c *rawConn) until(prefix string) string {
	c.t.Helper()
	for {
		l, err := c.line(10 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for %q: %v (last %q)", prefix, err, l)
		}
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
}

// imapLoginRaw logs in over implicit TLS and returns the connection.
func imapLoginRaw(t *testing.T, addr, user, pass string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr, true)
	c.until("* OK")
	c.send("a LOGIN " + user + " " + pass + "\r\n")
	if l := c.until("a "); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("login: %s", l)
	}
	return c
}

// rssKB is the resident set size of a process.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestConnectionLimits: beyond max_per_ip each protocol refuses with its
// own words; beyond max_per_user_ip a login ends the session as dovecot's
// mail_max_userip_connections does; freed slots are usable again.
func TestConnectionLimits(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig(`
[connections]
max_per_ip = 4
max_per_user_ip = 2
`))
	for _, tc := range []struct {
		kind, greeting, refusal string
	}{
		{"imap", "* OK", "* BYE [UNAVAILABLE]"},
		{"submission", "220 ", "421 4.7.0"},
		{"managesieve", `"IMPLEMENTATION"`, "BYE (TRYLATER)"},
	} {
		addr := s.Addr(tc.kind)
		var held []*rawConn
		for i := 0; i < 4; i++ {
			c := dialRaw(t, addr, false)
			c.until(tc.greeting)
			held = append(held, c)
		}
		c := dialRaw(t, addr, false)
		l, err := c.line(5 * time.Second)
		if err != nil || !strings.HasPrefix(l, tc.refusal) {
			t.Fatalf("%s: 5th connection from one address: %q %v, want %s", tc.kind, l, err, tc.refusal)
		}
		if _, err := c.line(5 * time.Second); err == nil {
			t.Fatalf("%s: refused connection stays open", tc.kind)
		}
		held[0].nc.Close()
		time.Sleep(200 * time.Millisecond)
		c = dialRaw(t, addr, false)
		if l := c.until(""); !strings.HasPrefix(l, tc.greeting) {
			t.Fatalf("%s: after one closed: %q", tc.kind, l)
		}
		for _, h := range held[1:] {
			h.nc.Close()
		}
		c.nc.Close()
	}
	time.Sleep(200 * time.Millisecond)

	imaps := s.Addr("imaps")
	a := imapLoginRaw(t, imaps, "alice", "alice-pw-1")
	b := imapLoginRaw(t, imaps, "alice", "alice-pw-1")
	c := dialRaw(t, imaps, true)
	c.until("* OK")
	c.send("a LOGIN alice alice-pw-1\r\n")
	l := c.until("")
	if l != "a NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=2)" {
		t.Fatalf("third session of alice: %q", l)
	}
	if _, err := c.line(5 * time.Second); err == nil {
		t.Fatal("session over the user limit stays open")
	}
	a.send("z LOGOUT\r\n")
	a.until("z OK")
	a.nc.Close()
	time.Sleep(200 * time.Millisecond)
	imapLoginRaw(t, imaps, "alice", "alice-pw-1")
	b.send("n NOOP\r\n")
	b.until("n OK")

	// Submission: AUTH beyond the bound is a temporary failure (454).
	sub := s.Addr("submission")
	subLogin := func() (*smtp.Client, error) {
		cl, err := smtp.Dial(sub)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		if err := cl.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
			t.Fatal(err)
		}
		return cl, cl.Auth(smtp.PlainAuth("", "alice", "alice-pw-1", "127.0.0.1"))
	}
	s1, err1 := subLogin()
	_, err2 := subLogin()
	_, err3 := subLogin()
	if err1 != nil || err2 != nil || err3 == nil || !strings.Contains(err3.Error(), "454") {
		t.Fatalf("submission AUTH of alice three times: %v, %v, %v; want ok, ok, 454", err1, err2, err3)
	}
	s1.Quit()
	time.Sleep(200 * time.Millisecond)
	if _, err := subLogin(); err != nil {
		t.Fatalf("submission AUTH after one session ended: %v", err)
	}

	// ManageSieve: the same per user and address.
	ms := s.Addr("managesieve")
	sieveLogin(t, ms, "alice", "alice-pw-1")
	sieveLogin(t, ms, "alice", "alice-pw-1")
	if l := sieveAuth(t, ms, "alice", "alice-pw-1"); !strings.HasPrefix(l, "BYE (TRYLATER)") || !strings.Contains(l, "mail_max_userip_connections=2") {
		t.Fatalf("third ManageSieve session of alice: %q", l)
	}
}

// sieveAuth connects to ManageSieve, does STARTTLS and AUTHENTICATE PLAIN
// and returns the answer line.
func sieveAuth(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c := dialRaw(t, addr, false)
	c.until("OK")
	c.send("STARTTLS\r\n")
	c.until("OK")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	c.nc, c.br = tc, bufio.NewReader(tc)
	c.until("OK")
	c.send(fmt.Sprintf("AUTHENTICATE \"PLAIN\" \"%s\"\r\n", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))))
	l, err := c.line(10 * time.Second)
	if err != nil {
		t.Fatalf("ManageSieve AUTHENTICATE: %v", err)
	}
	return l
}

func sieveLogin(t *testing.T, addr, user, pass string) {
	t.Helper()
	if l := sieveAuth(t, addr, user, pass); !strings.HasPrefix(l, "OK") {
		t.Fatalf("ManageSieve login: %q", l)
	}
}

// TestPreAuthMemory: before login, literals are capped (BYE "Literal
// size too large", as dovecot), ID is bounded as RFC 2971 says, and 40
// connections attacking at once leave the server under 100 MB RSS (the
// review saw 515 MB from 8).
func TestPreAuthMemory(t *testing.T) {
	dir := t.TempDir()
	s := startServeConfig(t, dir, abuseConfig(""))
	addr := s.Addr("imap")
	pid := s.cmd.Process.Pid

	c := dialRaw(t, addr, false)
	c.until("* OK")
	c.send("a ID (\"name\" {1048576}\r\n")
	if l := c.until("* BYE"); !strings.Contains(l, "Literal size too large") {
		t.Fatalf("1 MB literal before login: %q", l)
	}
	if _, err := c.line(5 * time.Second); err == nil {
		t.Fatal("connection stays open after the refused literal")
	}

	c = dialRaw(t, addr, false)
	c.until("* OK")
	var b strings.Builder
	b.WriteString("b ID (")
	for i := 0; i < 31; i++ {
		fmt.Fprintf(&b, "\"k%d\" \"v\" ", i)
	}
	c.send(strings.TrimSpace(b.String()) + ")\r\n")
	// As dovecot's imap-login: pairs beyond 30 are ignored, a field name
	// beyond 30 octets is BAD (TestPreAuthLikeDovecot compares).
	if l := c.until("b "); !strings.HasPrefix(l, "b OK") {
		t.Fatalf("ID with 31 pairs: %q", l)
	}
	c.send("c ID (\"" + strings.Repeat("k", 31) + "\" \"v\")\r\n")
	if l := c.until("c "); !strings.HasPrefix(l, "c BAD") {
		t.Fatalf("ID field name of 31 octets: %q", l)
	}
	c.send("d ID (\"name\" \"" + strings.Repeat("x", 1024) + "\")\r\n")
	if l := c.until("d "); !strings.HasPrefix(l, "d OK") {
		t.Fatalf("ID value of 1024 octets: %q", l)
	}

	before := rssKB(t, pid)
	// 40 attackers: non-synchronizing 1 MB literals (sent whether or not
	// the server wants them), 64 KB lines and the biggest accepted ID.
	var wg sync.WaitGroup
	var peak int
	var mu sync.Mutex
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(20 * time.Second))
			chunk := strings.Repeat("y", 1<<20)
			switch i % 3 {
			case 0:
				fmt.Fprintf(nc, "x ID (\"name\" {1048576+}\r\n%s)\r\n", chunk)
			case 1:
				for j := 0; j < 16; j++ {
					fmt.Fprintf(nc, "x NOOP %s\r\n", strings.Repeat("z", 60<<10))
				}
			case 2:
				for j := 0; j < 16; j++ {
					fmt.Fprintf(nc, "x ID (\"a\" {1000+}\r\n%s \"b\" {1000+}\r\n%s)\r\n", chunk[:1000], chunk[:1000])
				}
			}
			mu.Lock()
			peak = max(peak, rssKB(t, pid))
			mu.Unlock()
			nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			io.Copy(io.Discard, nc)
		}(i)
	}
	wg.Wait()
	after := rssKB(t, pid)
	t.Logf("RSS before %d KB, peak seen %d KB, after %d KB", before, peak, after)
	if peak > 100<<10 || after > 100<<10 {
		t.Fatalf("pre-auth attack: RSS peak %d KB, after %d KB; want < 100 MB", peak, after)
	}
}

// TestLiteralsPerCommand: after login one command's literals are bounded
// (the review's SEARCH with 150 x 1 MB literals added 139 MB); the
// session goes on.
func TestLiteralsPerCommand(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig(`
[connections]
command_literals = "4MB"
`))
	c := imapLoginRaw(t, s.Addr("imaps"), "alice", "alice-pw-1")
	c.send("s SELECT INBOX\r\n")
	c.until("s OK")
	pid := s.cmd.Process.Pid
	before := rssKB(t, pid)
	chunk := strings.Repeat("q", 1<<20)
	go func() {
		var b strings.Builder
		b.WriteString("t SEARCH")
		for i := 0; i < 30; i++ {
			b.WriteString(" BODY {1048576+}\r\n")
			b.WriteString(chunk)
		}
		b.WriteString("\r\n")
		c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c.nc, b.String())
	}()
	l := c.until("t ")
	if !strings.HasPrefix(l, "t BAD") || !strings.Contains(l, "exceed") {
		t.Fatalf("SEARCH with 30 MB of literals: %q", l)
	}
	after := rssKB(t, pid)
	t.Logf("RSS before %d KB, after %d KB", before, after)
	if after-before > 20<<10 {
		t.Fatalf("SEARCH with 30 MB of literals grew RSS by %d KB", after-before)
	}
	c.send("u NOOP\r\n")
	c.until("u OK")
	// A command within the bound works.
	c.send("v SEARCH BODY {3}\r\nabc\r\n")
	if l := c.until("v "); !strings.HasPrefix(l, "v OK") {
		t.Fatalf("small literal: %q", l)
	}
}

// TestIMAPTimeouts: a silent or dripping connection before login is
// closed after preauth_timeout; after login a command must arrive within
// command_timeout, and silence ends the session after idle_timeout
// (configurable, short here).
func TestIMAPTimeouts(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig(`
[connections]
preauth_timeout = "2s"
command_timeout = "1s"
idle_timeout = "3s"
`))
	addr := s.Addr("imap")
	silent := dialRaw(t, addr, false)
	silent.until("* OK")
	sieveSilent := dialRaw(t, s.Addr("managesieve"), false)
	sieveSilent.until("OK")
	drip := dialRaw(t, addr, false)
	drip.until("* OK")
	start := time.Now()
	// The drip sends a complete NOOP now and then: it is never idle long,
	// but it does not log in.
	stop := make(chan struct{})
	go func() {
		for i := 0; i < 20; i++ {
			select {
			case <-stop:
				return
			case <-time.After(400 * time.Millisecond):
			}
			drip.nc.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := io.WriteString(drip.nc, "n NOOP\r\n"); err != nil {
				return
			}
		}
	}()
	l := silent.until("* BYE")
	if el := time.Since(start); el < 1500*time.Millisecond || el > 5*time.Second {
		t.Fatalf("silent connection closed after %v (%q), want ~2s", el, l)
	}
	drip.until("* BYE")
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("dripping connection closed after %v, want ~2s", el)
	}
	sieveSilent.until("BYE")
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("silent ManageSieve connection closed after %v, want ~2s", el)
	}
	close(stop)

	// After login: a command started but not finished within 1s.
	c := imapLoginRaw(t, s.Addr("imaps"), "alice", "alice-pw-1")
	start = time.Now()
	c.send("a NOO")
	c.until("* BYE")
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("half command closed after %v, want ~1s", el)
	}
	// Silence after login: idle_timeout.
	c = imapLoginRaw(t, s.Addr("imaps"), "alice", "alice-pw-1")
	start = time.Now()
	l = c.until("* BYE")
	if el := time.Since(start); el < 2500*time.Millisecond || el > 6*time.Second || !strings.Contains(l, "autologout") {
		t.Fatalf("idle session: %q after %v, want autologout after ~3s", l, el)
	}
}

// TestNonReadingClients: clients that ask for a big FETCH and stop
// reading are disconnected after write_timeout and their memory freed
// (the review saw 30 of them hold 619 MB for ever).
func TestNonReadingClients(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig(`
[server]
log_level = "debug"
[connections]
write_timeout = "1s"
max_per_user_ip = 20
`))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Log())
		}
	})
	imaps := s.Addr("imaps")
	c := imapLoginRaw(t, imaps, "alice", "alice-pw-1")
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 80000) // 5 MB
	msg := "Subject: big\r\n\r\n" + body
	c.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	if l := c.until("a "); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("APPEND: %q\n%s", l, s.Log())
	}
	pid := s.cmd.Process.Pid
	base := rssKB(t, pid)
	var conns []*rawConn
	for i := 0; i < 10; i++ {
		r := imapLoginRaw(t, imaps, "alice", "alice-pw-1")
		r.send("s SELECT INBOX\r\n")
		r.until("s OK")
		for j := 0; j < 20; j++ {
			r.send(fmt.Sprintf("f%d FETCH 1 BODY.PEEK[]\r\n", j))
		}
		conns = append(conns, r)
	}
	time.Sleep(4 * time.Second)
	// Every one of them was cut off: reading what is buffered ends at EOF
	// well before the 100 MB that 20 FETCHes would have sent.
	for i, r := range conns {
		r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, r.nc)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("client %d: reading after the stall: %v (got %d bytes)", i, err, n)
		}
		if n > 50<<20 {
			t.Fatalf("client %d: received %d bytes: not disconnected", i, n)
		}
	}
	time.Sleep(2500 * time.Millisecond) // the store's buffers are returned within 2 s
	after := rssKB(t, pid)
	t.Logf("RSS with the message stored %d KB, after the stalled clients %d KB", base, after)
	if after-base > 60<<10 {
		t.Fatalf("stalled clients left %d KB behind", after-base)
	}
	c.send("n NOOP\r\n")
	c.until("n OK")
}

// TestManyIdleConnections: 5000 idle IMAP connections from 10 addresses
// (the default max_per_ip is 1000) are all greeted and held within the
// memory seen before the limits (69 MB in the review).
func TestManyIdleConnections(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 5200 {
		t.Fatalf("this test holds 5000 connections: the open-file limit must allow it (have %+v, %v)", lim, err)
	}
	dir := t.TempDir()
	s := startServeConfig(t, dir, abuseConfig(""))
	addr := s.Addr("imap")
	pid := s.cmd.Process.Pid
	before := rssKB(t, pid)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 5000; i++ {
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i%10))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	buf := make([]byte, 512)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := c.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "* OK") {
			t.Fatalf("connection %d: %q %v", i, buf[:n], err)
		}
	}
	after := rssKB(t, pid)
	t.Logf("RSS %d KB before, %d KB with 5000 idle connections", before, after)
	if after > 150<<10 {
		t.Fatalf("5000 idle connections: RSS %d KB, want < 150 MB", after)
	}
}
