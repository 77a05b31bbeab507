package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmHWMKB is a process's peak resident set size so far.
func vmHWMKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestBigMessageMemory: a 2.5 GB message in the store (as the converter
// brings them) is fetched (partial, whole, BODYSTRUCTURE, RFC822.SIZE),
// searched (BODY, TEXT), copied and moved with the server's peak RSS
// staying under 64 MB above what it was before (the review saw 8.5 GB).
// The message is a sparse file (its middle is a hole), so making it costs
// nothing; reading it still goes through every byte.
func TestBigMessageMemory(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig("[limits]\nquota = \"20GB\"\n"))
	c := imapLoginRaw(t, s.Addr("imaps"), "alice", "alice-pw-1")
	c.send("a CREATE Archive\r\n")
	c.until("a OK")

	const size = 2500 << 20
	head := "From: big@example.org\nSubject: a very big message\nMessage-ID: <big@test>\nContent-Type: text/plain\n\nfirst line of the body\n"
	tail := "\nthe needle at the very end\n"
	sparseMessage(t, dir, "M1P1", head, size, tail)
	// Every bound is checked against the peak after each command.
	check := selectBoundRSS(t, s.cmd.Process.Pid, c, "on a 2.5 GB message")
	crlfSize := int64(size + strings.Count(head, "\n") + strings.Count(tail, "\n"))
	cmds := []struct{ what, cmd, want string }{
		{"FETCH RFC822.SIZE", "c FETCH 1 RFC822.SIZE\r\n", fmt.Sprintf("RFC822.SIZE %d", crlfSize)},
		{"FETCH BODY[]<0.100>", "d FETCH 1 BODY.PEEK[]<0.100>\r\n", "BODY[]<0> {100}"},
		{"FETCH BODY[]<end-60.100>", fmt.Sprintf("e FETCH 1 BODY.PEEK[]<%d.100>\r\n", crlfSize-60), "BODY[]<" + strconv.FormatInt(crlfSize-60, 10) + "> {60}"},
		{"FETCH BODYSTRUCTURE", "f FETCH 1 BODYSTRUCTURE\r\n", "BODYSTRUCTURE (\"text\" \"plain\""},
		{"SEARCH BODY", "g SEARCH BODY \"needle at the very END\"\r\n", "* SEARCH 1"},
		{"SEARCH TEXT", "h SEARCH TEXT nothere\r\n", "* SEARCH"},
		{"SORT (SIZE)", "s SORT (SIZE) UTF-8 ALL\r\n", "* SORT 1"},
		{"COPY", "i COPY 1 Archive\r\n", "i OK"},
		{"MOVE", "j MOVE 1 Archive\r\n", "j OK"},
	}
	for _, cm := range cmds {
		start := time.Now()
		all := c.commandWants(t, cm.what, cm.cmd, cm.want)
		if cm.what == "FETCH BODY[]<end-60.100>" && !strings.Contains(all, "needle at the very end") {
			t.Fatalf("end of the message: %q", all)
		}
		check(cm.what, start)
	}
	// The whole message, read by the client and counted.
	c.send("k SELECT Archive\r\n")
	c.until("k OK")
	start := time.Now()
	c.send("l FETCH 1 BODY.PEEK[]\r\n")
	l, err := c.br.ReadString('\n')
	if err != nil || !strings.HasSuffix(l, fmt.Sprintf("{%d}\r\n", crlfSize)) {
		t.Fatalf("FETCH BODY[]: %q %v", l, err)
	}
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
	if n, err := io.CopyN(io.Discard, c.br, crlfSize); err != nil {
		t.Fatalf("FETCH BODY[]: %d bytes of %d: %v", n, crlfSize, err)
	}
	c.until("l OK")
	check("FETCH BODY[] (2.5 GB sent)", start)
}

// commandWants sends one tagged IMAP command (its tag: the first two
// bytes) and reads to its tagged reply, which must be OK, with want
// somewhere in the lines; it returns them joined.
func (c *rawConn) commandWants(t *testing.T, what, cmd, want string) string {
	t.Helper()
	c.send(cmd)
	tag := cmd[:2]
	var got []string
	for {
		l, err := c.line(2 * time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got = append(got, l)
		if strings.HasPrefix(l, tag) {
			break
		}
	}
	all := strings.Join(got, "\n")
	if !strings.HasPrefix(got[len(got)-1], tag+"OK") || !strings.Contains(all, want) {
		t.Fatalf("%s: %.600q, want %q", what, all, want)
	}
	return all
}

// sparseMessage puts a message of size bytes into alice's INBOX (new/):
// head, a hole of NULs, tail. The file takes little disk; the server
// reads all of it.
func sparseMessage(t *testing.T, dir, uniq, head string, size int64, tail string) {
	t.Helper()
	name := filepath.Join(dir, "mail", "alice", "Maildir", "new", fmt.Sprintf("1700000000.%s.test,S=%d", uniq, size))
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(head)
	if _, err := f.WriteAt([]byte(tail), size-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.RemoveAll(filepath.Join(dir, "mail")) })
}

// selectBoundRSS selects INBOX on c and returns a check, called after
// each command, that the server's peak RSS (VmHWM of pid) stayed within
// 64 MB of what it was after the SELECT; of says what the message is.
func selectBoundRSS(t *testing.T, pid int, c *rawConn, of string) func(what string, start time.Time) {
	t.Helper()
	c.send("b SELECT INBOX\r\n")
	c.until("b OK")
	base := vmHWMKB(t, pid)
	return func(what string, start time.Time) {
		t.Helper()
		peak := vmHWMKB(t, pid)
		t.Logf("%-40s peak RSS %6d KB (+%d KB) in %v", what, peak, peak-base, time.Since(start).Round(time.Millisecond))
		if peak-base > 64<<10 {
			t.Fatalf("%s %s: peak RSS +%d KB above the %d KB before; want < 64 MB", what, of, peak-base, base)
		}
	}
}
