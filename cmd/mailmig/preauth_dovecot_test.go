package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startDovecotIMAP runs Debian's dovecot (imap-login and imap) on a
// loopback port with a passwd-file of users and mail_max_userip_connections
// = maxUserIP; it is stopped by PID when the test ends.
func startDovecotIMAP(t *testing.T, users map[string]string, maxUserIP int) string {
	t.Helper()
	bin := requireTool(t, "dovecot")
	dir := t.TempDir()
	// dovecot's auth and imap processes run as other users.
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	must(t, os.Chmod(dir, 0o755))
	for _, d := range []string{"run", "state", "mail"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(t, os.Chown(filepath.Join(dir, "mail"), 65534, 65534))
	var pw strings.Builder
	for u, p := range users {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s:65534:65534::%s::\n", u, p, filepath.Join(dir, "mail", u))
	}
	must(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw.String()), 0o644))
	port := strconv.Itoa(freePort(t))
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = %[1]s/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]s
  }
  inet_listener imaps {
    port = 0
  }
}
protocol imap {
  mail_max_userip_connections = %[3]d
}
`, dir, port, maxUserIP)
	must(t, os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644))
	cmd := exec.Command(bin, "-F", "-c", filepath.Join(dir, "dovecot.conf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	addr := "127.0.0.1:" + port
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
	t.Fatalf("dovecot does not listen on %s\n%s", addr, b)
	return ""
}

// preAuthOutcome sends data after the greeting and describes what comes
// back within a short wait: the first answer (a BYE with its text, a
// continuation "+", or the tagged status with its response code but not
// its text) and whether the server then closed the connection.
func preAuthOutcome(t *testing.T, addr string, data string) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	go func() {
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		nc.Write([]byte(data))
	}()
	answer := ""
	for answer == "" {
		nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		l, err := br.ReadString('\n')
		l = strings.TrimRight(l, "\r\n")
		switch {
		case err != nil:
			answer = "closed without an answer"
		case strings.HasPrefix(l, "* BYE"):
			answer = l
		case strings.HasPrefix(l, "+"):
			answer = "+"
		case strings.HasPrefix(l, "a "):
			f := strings.SplitN(l, " ", 4)
			answer = f[0] + " " + f[1]
			if len(f) > 2 && strings.HasPrefix(f[2], "[") && !strings.HasPrefix(f[2], "[CAPABILITY") {
				answer += " " + f[2]
			}
		}
	}
	nc.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	closed := false
	for {
		if _, err := br.ReadString('\n'); err != nil {
			ne, ok := err.(net.Error)
			closed = !(ok && ne.Timeout())
			break
		}
	}
	if closed {
		return answer + " (closed)"
	}
	return answer
}

// TestPreAuthLikeDovecot: what a client may send before login, and the
// user+IP session limit, answered as Debian's dovecot 2.3 answers them
// (both servers in this run, on the same inputs).
func TestPreAuthLikeDovecot(t *testing.T) {
	dv := startDovecotIMAP(t, map[string]string{"alice": "alice-pw-1"}, 2)
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, `
[imap]
listeners = [{ address = "127.0.0.1:0", tls = "none", trusted = true }]
[metrics]
listen = "127.0.0.1:0"
[connections]
max_per_user_ip = 2
`)
	mm := s.Addr("imap")
	var pairs31 strings.Builder
	for i := 0; i < 31; i++ {
		fmt.Fprintf(&pairs31, " \"k%d\" \"v\"", i)
	}
	cases := []struct{ name, data string }{
		{"1 MB literal", "a ID (\"name\" {1048576}\r\n"},
		{"1 MB LITERAL+", "a ID (\"name\" {1048576+}\r\n" + strings.Repeat("x", 100000)},
		{"literal of 8000", "a ID (\"name\" {8000}\r\n"},
		{"literal of 8188", "a ID (\"name\" {8188}\r\n"},
		{"LOGIN literal of 8190", "a LOGIN {8190}\r\n"},
		{"ID with 31 pairs", "a ID (" + strings.TrimSpace(pairs31.String()) + ")\r\n"},
		{"ID field of 31 octets", "a ID (\"" + strings.Repeat("k", 31) + "\" \"v\")\r\n"},
		{"ID value of 1025 octets", "a ID (\"name\" {1025+}\r\n" + strings.Repeat("y", 1025) + ")\r\n"},
		{"ID NIL", "a ID NIL\r\n"},
	}
	for _, tc := range cases {
		want, got := preAuthOutcome(t, dv, tc.data), preAuthOutcome(t, mm, tc.data)
		t.Logf("%-24s dovecot: %-40s mailmig: %s", tc.name, want, got)
		if got != want {
			t.Errorf("%s: mailmig %q, dovecot %q", tc.name, got, want)
		}
	}
	// The third session of a user from one address.
	for _, addr := range []string{dv, mm} {
		for i := 0; i < 2; i++ {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			br.ReadString('\n')
			nc.Write([]byte("a LOGIN alice alice-pw-1\r\n"))
			if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "a OK") {
				t.Fatalf("%s: login %d: %q", addr, i, l)
			}
		}
	}
	want, got := preAuthOutcome(t, dv, "a LOGIN alice alice-pw-1\r\n"), preAuthOutcome(t, mm, "a LOGIN alice alice-pw-1\r\n")
	t.Logf("third session: dovecot %q, mailmig %q", want, got)
	if got != want || !strings.Contains(want, "[LIMIT]") {
		t.Errorf("third session of alice from one address: mailmig %q, dovecot %q", got, want)
	}
}
