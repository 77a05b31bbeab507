package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// smtpStep sends a command (unless "") and reads the whole reply,
// failing unless it starts with want.
func smtpStep(t *testing.T, c net.Conn, r *bufio.Reader, cmd, want string) string {
	t.Helper()
	if cmd != "" {
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c, cmd); err != nil {
			t.Fatalf("send %.30q: %v", cmd, err)
		}
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var all string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %.30q: %v (%q)", cmd, err, all)
		}
		all += l
		if len(l) < 4 || l[3] != '-' {
			break
		}
	}
	if !strings.HasPrefix(all, want) {
		t.Fatalf("after %.30q: %q, want %s", cmd, all, want)
	}
	return all
}

// TestLMTPSpoolMemory: ten LMTP clients each half-send a 45 MB message
// over the unix socket and stall; the server keeps them in temporary
// files, not in memory (the review saw 865 MB); so do ten submission
// clients. A complete message beyond
// the threshold is stored byte for byte. The socket is mode 0660 with the
// MTA's group.
func TestLMTPSpoolMemory(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig(""))
	sock := s.Addr("lmtp-unix")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup("postfix")
	if err != nil {
		t.Fatalf("group postfix (the default socket_group): %v", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	if fi.Mode().Perm() != 0o660 || int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Fatalf("LMTP socket mode %v gid %d, want 0660 and postfix (%d)", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid, gid)
	}

	pid := s.cmd.Process.Pid
	before := rssKB(t, pid)
	line := strings.Repeat("x", 98) + "\r\n"
	chunk := strings.Repeat(line, 10000) // 1 MB
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	for i := 0; i < 10; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
		r := bufio.NewReader(c)
		smtpStep(t, c, r, "", "220")
		smtpStep(t, c, r, "LHLO test\r\n", "250")
		smtpStep(t, c, r, "MAIL FROM:<bob@example.org>\r\n", "250")
		smtpStep(t, c, r, "RCPT TO:<alice@example.org>\r\n", "250")
		smtpStep(t, c, r, "DATA\r\n", "354")
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
			io.WriteString(c, "Subject: half\r\n\r\n")
			for j := 0; j < 45; j++ {
				if _, err := io.WriteString(c, chunk); err != nil {
					t.Errorf("sending: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	during := rssKB(t, pid)
	mu.Unlock()
	t.Logf("RSS before %d KB, with 10 half-sent 45 MB messages %d KB", before, during)
	if during-before > 64<<10 {
		t.Fatalf("10 half-sent 45 MB messages added %d KB of RSS; want flat (< 64 MB)", during-before)
	}
	for _, c := range conns {
		c.Close()
	}

	// Submission spools the same way (loopback may relay in this world).
	before = rssKB(t, pid)
	conns = nil
	for i := 0; i < 10; i++ {
		c, err := net.Dial("tcp", s.Addr("submission"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
		r := bufio.NewReader(c)
		smtpStep(t, c, r, "", "220")
		smtpStep(t, c, r, "EHLO test\r\n", "250")
		smtpStep(t, c, r, "MAIL FROM:<bob@example.org>\r\n", "250")
		smtpStep(t, c, r, "RCPT TO:<alice@example.org>\r\n", "250")
		smtpStep(t, c, r, "DATA\r\n", "354")
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
			io.WriteString(c, "Subject: half\r\n\r\n")
			for j := 0; j < 45; j++ {
				if _, err := io.WriteString(c, chunk); err != nil {
					t.Errorf("sending: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	during = rssKB(t, pid)
	t.Logf("submission: RSS before %d KB, with 10 half-sent 45 MB messages %d KB", before, during)
	if during-before > 64<<10 {
		t.Fatalf("submission: 10 half-sent 45 MB messages added %d KB of RSS; want flat (< 64 MB)", during-before)
	}
	for _, c := range conns {
		c.Close()
	}

	// A complete message beyond the threshold arrives whole.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	smtpStep(t, c, r, "", "220")
	smtpStep(t, c, r, "LHLO test\r\n", "250")
	smtpStep(t, c, r, "MAIL FROM:<bob@example.org>\r\n", "250")
	smtpStep(t, c, r, "RCPT TO:<alice@example.org>\r\n", "250")
	smtpStep(t, c, r, "DATA\r\n", "354")
	var body bytes.Buffer
	for i := 0; i < 30000; i++ {
		fmt.Fprintf(&body, "line %06d %s\r\n", i, strings.Repeat("y", 40))
	}
	smtpStep(t, c, r, "Subject: spooled\r\n\r\n"+body.String()+".\r\n", "250")
	var stored []byte
	for i := 0; i < 100 && stored == nil; i++ {
		ents, _ := os.ReadDir(filepath.Join(dir, "mail", "alice", "Maildir", "new"))
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, "mail", "alice", "Maildir", "new", e.Name()))
			if bytes.Contains(b, []byte("Subject: spooled")) {
				stored = b
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := body.String()
	if stored == nil || !strings.HasSuffix(string(stored), "Subject: spooled\r\n\r\n"+want) {
		t.Fatalf("spooled message not stored byte for byte (%d bytes stored, body %d): ...%q", len(stored), len(want), stored[max(0, len(stored)-200):])
	}
}

// rawSink is an SMTP server that records the DATA bytes exactly as they
// came over the wire (before any dot-unstuffing), to see what a
// smarthost receives.
type rawSink struct {
	addr string
	mu   sync.Mutex
	data [][]byte
}

func startRawSink(t *testing.T) *rawSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &rawSink{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *rawSink) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	io.WriteString(c, "220 sink ESMTP\r\n")
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(l)); {
		case strings.HasPrefix(cmd, "EHLO"):
			io.WriteString(c, "250-sink\r\n250 8BITMIME\r\n")
		case cmd == "DATA":
			io.WriteString(c, "354 go\r\n")
			var raw []byte
			for !bytes.HasSuffix(raw, []byte("\r\n.\r\n")) {
				b, err := r.ReadByte()
				if err != nil {
					return
				}
				raw = append(raw, b)
			}
			s.mu.Lock()
			s.data = append(s.data, raw)
			s.mu.Unlock()
			io.WriteString(c, "250 ok\r\n")
		case cmd == "QUIT":
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			io.WriteString(c, "250 ok\r\n")
		}
	}
}

func (s *rawSink) wait(t *testing.T) []byte {
	t.Helper()
	for i := 0; i < 200; i++ {
		s.mu.Lock()
		if len(s.data) > 0 {
			d := s.data[0]
			s.mu.Unlock()
			return d
		}
		s.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the smarthost received nothing")
	return nil
}

// TestSubmissionBareLineEnds: the 2023 SMTP-smuggling payloads ("\r.\r",
// "\n.\n", "\r.\r\n") in submitted DATA reach the smarthost as ordinary,
// dot-stuffed CRLF lines, never as a bare line end a lenient receiver
// could take for the end of DATA.
func TestSubmissionBareLineEnds(t *testing.T) {
	sink := startRawSink(t)
	dir := t.TempDir()
	s := startServeConfig(t, dir, `
[submission]
smarthost_starttls = false
retry_intervals = ["300ms"]
[metrics]
listen = "127.0.0.1:0"
`, "--smarthost", sink.addr)
	c, err := net.Dial("tcp", s.Addr("submission"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	smtpStep(t, c, r, "", "220")
	smtpStep(t, c, r, "EHLO client.test\r\n", "250")
	smtpStep(t, c, r, "MAIL FROM:<alice@example.org>\r\n", "250")
	smtpStep(t, c, r, "RCPT TO:<carol@remote.test>\r\n", "250")
	smtpStep(t, c, r, "DATA\r\n", "354")
	payload := "Subject: smuggle\r\n\r\nhello\r.\rMAIL FROM:<evil@a.test>\r\n" +
		"two\n.\nRCPT TO:<victim@b.test>\r\nthree\r.\r\nDATA\r\nend\r\n.\r\n"
	smtpStep(t, c, r, payload, "250")
	raw := sink.wait(t)
	for i, b := range raw {
		if b == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n') || b == '\n' && (i == 0 || raw[i-1] != '\r') {
			t.Fatalf("bare line end at byte %d of what the smarthost received:\n%q", i, raw)
		}
	}
	body := string(raw)
	for _, want := range []string{"hello\r\n..\r\nMAIL FROM:<evil@a.test>\r\n", "two\r\n..\r\nRCPT TO:<victim@b.test>\r\n", "three\r\n..\r\nDATA\r\nend\r\n.\r\n"} {
		if !strings.Contains(body, want) {
			t.Fatalf("smarthost received %q, want it to contain %q", body, want)
		}
	}
	if strings.Count(body, "\r\n.\r\n") != 1 {
		t.Fatalf("more than one end-of-data in %q", body)
	}
}
