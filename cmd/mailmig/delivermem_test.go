package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/server/outbound/outboundtest"
)

// bigBody is a 45 MB message body: 450000 lines of 100 bytes (CRLF).
func bigBody() []byte {
	line := strings.Repeat("x", 98) + "\r\n"
	return []byte(strings.Repeat(line, 450000))
}

// lmtpSendBig delivers hdr+body to rcpts over one LMTP connection and
// checks each recipient's reply (RFC 2033 §4.2) is 250.
func lmtpSendBig(addr string, rcpts []string, hdr string, body []byte) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(4 * time.Minute))
	r := bufio.NewReader(c)
	step := func(cmd, want string) (string, error) {
		if _, err := io.WriteString(c, cmd); err != nil {
			return "", err
		}
		var all string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return all, fmt.Errorf("after %.20q: %w", cmd, err)
			}
			all += l
			if len(l) < 4 || l[3] != '-' {
				break
			}
		}
		if !strings.HasPrefix(all, want) {
			return all, fmt.Errorf("after %.20q: %q, want %s", cmd, all, want)
		}
		return all, nil
	}
	steps := [][2]string{{"", "220"}, {"LHLO test\r\n", "250"}, {"MAIL FROM:<sender@example.net>\r\n", "250"}}
	for _, rc := range rcpts {
		steps = append(steps, [2]string{"RCPT TO:<" + rc + ">\r\n", "250"})
	}
	steps = append(steps, [2]string{"DATA\r\n", "354"})
	for _, s := range steps {
		if _, err := step(s[0], s[1]); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(c, hdr); err != nil {
		return err
	}
	if _, err := c.Write(body); err != nil {
		return err
	}
	for i := range rcpts {
		end := ""
		if i == 0 {
			end = ".\r\n"
		}
		if _, err := step(end, "250"); err != nil {
			return fmt.Errorf("%s: %w", rcpts[i], err)
		}
	}
	return nil
}

// storedMessages returns the files in a Maildir folder's new/ and cur/.
func storedMessages(t *testing.T, folder string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(folder, sub))
		for _, e := range ents {
			out = append(out, filepath.Join(folder, sub, e.Name()))
		}
	}
	return out
}

// TestLMTPDeliverMemory: ten COMPLETE 45 MB messages delivered in
// parallel over LMTP, to users whose Sieve scripts test headers and size,
// add a header and file (alice), flag and redirect a copy through the
// smarthost (bob), and answer with a vacation reply (carol: one, though
// her three messages from one sender arrive at once); one message has
// two recipients. Delivery
// streams from the spool file, so the server's peak RSS (VmHWM, which
// also covers the queue relaying bob's copies) grows by < 64 MB; with
// delivery taking the message as a byte slice it grew by 1.3 GB. Every
// copy ends with the message byte for byte.
func TestLMTPDeliverMemory(t *testing.T) {
	data := t.TempDir()
	sink := outboundtest.Start(t, outboundtest.Options{})
	for _, u := range []string{"alice", "bob", "carol"} {
		createUser(t, data, u, "pw-"+u)
	}
	activateScript(t, data, "alice", `require ["fileinto", "mailbox", "editheader"];
if header :contains "Subject" "big" { addheader "X-Big" "yes"; fileinto :create "Big"; }`)
	activateScript(t, data, "bob", `require ["copy", "imap4flags"];
if size :over 1M { addflag "\\Flagged"; }
redirect :copy "bob@elsewhere.example";`)
	activateScript(t, data, "carol", `require "vacation"; vacation :days 1 "away";`)
	s := startServeConfig(t, data, "[submission]\nsmarthost = \""+sink.Addr+"\"\nsmarthost_starttls = false\n")
	pid := s.cmd.Process.Pid
	body := bigBody()
	// The last message has two recipients: two copies read one spool file
	// at once.
	rcpts := [][]string{{"alice"}, {"alice"}, {"alice"}, {"alice"}, {"bob"}, {"bob"}, {"bob"}, {"carol"}, {"carol"}, {"carol", "alice"}}

	time.Sleep(300 * time.Millisecond)
	before := rssKB(t, pid)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(rcpts))
	for i, users := range rcpts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var addrs []string
			for _, u := range users {
				addrs = append(addrs, u+"@example.org")
			}
			hdr := fmt.Sprintf("To: %s\r\nSubject: big %d\r\nMessage-ID: <big%d@test>\r\n\r\n", strings.Join(addrs, ", "), i, i)
			errs[i] = lmtpSendBig(s.Addr("lmtp"), addrs, hdr, body)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d to %s: %v\n%s", i, rcpts[i], err, s.Log())
		}
	}
	// bob's three redirects and carol's one vacation reply leave through
	// the queue: they count too. The sink, under -race, reads a 45 MB
	// message in ~12 s on an idle machine and in minutes on a loaded one:
	// it is waited for while it receives.
	delivered := time.Since(start)
	sink.WaitActive(4, time.Minute)
	relayed := time.Since(start)
	time.Sleep(300 * time.Millisecond) // a second vacation reply would arrive now
	got := sink.Messages()
	peak := vmHWMKB(t, pid)
	t.Logf("delivered in %v, 4 messages at the smarthost after %v", delivered.Round(time.Millisecond), relayed.Round(time.Millisecond))
	t.Logf("server RSS before %d KB, peak during 10 parallel 45 MB deliveries and 3 relays %d KB (+%d KB)", before, peak, peak-before)
	if peak-before > 64<<10 {
		t.Errorf("10 parallel 45 MB deliveries raised the server's peak RSS by %d KB; want < 64 MB", peak-before)
	}

	home := filepath.Join(data, "mail")
	check := func(who string, files []string, n int, prefix string) {
		t.Helper()
		if len(files) != n {
			t.Fatalf("%s: %d messages, want %d", who, len(files), n)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte(prefix)) || !bytes.HasSuffix(b, body) {
				t.Errorf("%s: %s (%d bytes) does not start %q and end with the 45 MB body", who, f, len(b), prefix)
			}
		}
	}
	check("alice Big", storedMessages(t, filepath.Join(home, "alice", "Maildir", ".Big")), 5, "X-Big: yes\r\nReturn-Path: <sender@example.net>\r\n")
	check("bob INBOX", storedMessages(t, filepath.Join(home, "bob", "Maildir")), 3, "Return-Path: <sender@example.net>\r\n")
	for _, f := range storedMessages(t, filepath.Join(home, "bob", "Maildir")) {
		if !strings.HasSuffix(f, ":2,F") {
			t.Errorf("bob: %s not flagged", f)
		}
	}
	check("carol INBOX", storedMessages(t, filepath.Join(home, "carol", "Maildir")), 3, "Return-Path: <sender@example.net>\r\n")
	var redirected, vacation int
	for _, m := range got {
		switch {
		case m.From == "sender@example.net" && len(m.To) == 1 && m.To[0] == "bob@elsewhere.example":
			redirected++
			if !bytes.HasPrefix(m.Data, []byte("X-Sieve-Redirected-From: <bob@example.org>\r\n")) || !bytes.HasSuffix(m.Data, body) {
				t.Errorf("redirected copy (%d bytes) does not carry the message", len(m.Data))
			}
		case m.From == "" && len(m.To) == 1 && m.To[0] == "sender@example.net" &&
			bytes.HasPrefix(m.Data, []byte("From: <carol@example.org>\r\n")) &&
			bytes.Contains(m.Data, []byte("\r\nAuto-Submitted: auto-replied (vacation)\r\n")):
			vacation++
		default:
			// A bounce (of a redirect the smarthost refused) goes to
			// sender@example.net from <> too: it is no vacation reply.
			t.Errorf("unexpected message at the smarthost: from <%s> to %v: %.400q", m.From, m.To, m.Data)
		}
	}
	if redirected != 3 || vacation != 1 {
		t.Errorf("smarthost got %d redirects and %d vacation replies, want 3 and 1\n%s", redirected, vacation, s.Log())
	}
}

// TestDeliverCommandMemory: `mailmig deliver` with a 45 MB message on
// stdin for a user in dual delivery (old mbox, From_ quoting, journal
// hashes, new store) stays under 64 MB of peak RSS (rusage maxrss): stdin
// is spooled to a temporary file and each side is written from it. Both
// copies hold the message. (Reading stdin whole, it peaked at ~175 MB.)
func TestDeliverCommandMemory(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 20<<10, "jo")
	mustMailmig(t, data, "enqueue", "jo")
	mustRun(t, data)
	spoolPath := filepath.Join(data, "old", "spool", "jo")
	oldBefore, err := os.Stat(spoolPath)
	if err != nil {
		t.Fatal(err)
	}
	maildir := filepath.Join(data, "mail", "jo", "Maildir")
	newBefore := len(storedMessages(t, maildir))

	body := bigBody()
	// One body line starts "From ": the old copy quotes it.
	body = append(append([]byte("From the start, a line to quote\r\n"), body...), "done\r\n"...)
	hdr := "From sender@example.com Mon Oct  5 10:00:00 2009\nSubject: big\r\nMessage-ID: <bigdeliver@test>\r\n\r\n"
	// GNU time reports the child's own peak (ru_maxrss of a process that
	// os/exec starts would include this test's memory at the exec).
	cmd := exec.Command("/usr/bin/time", "-f", "maxrss=%M", binPath, "--data", data, "deliver", "jo")
	cmd.Env = append(os.Environ(), "MAILMIG_CONFIG=")
	cmd.Stdin = io.MultiReader(strings.NewReader(hdr), bytes.NewReader(body))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("deliver: %v\n%s", err, errb.String())
	}
	_, after, ok := strings.Cut(errb.String(), "maxrss=")
	maxrss, err := strconv.Atoi(strings.TrimSpace(after))
	if !ok || err != nil {
		t.Fatalf("no maxrss from /usr/bin/time: %q", errb.String())
	}
	t.Logf("mailmig deliver of a 45 MB message (dual: old mbox and new store): %v, peak RSS %d KB", time.Since(start).Round(time.Millisecond), maxrss)
	if maxrss > 64<<10 {
		t.Errorf("mailmig deliver peaked at %d KB RSS for a 45 MB message; want < 64 MB", maxrss)
	}

	msg := append([]byte("Subject: big\r\nMessage-ID: <bigdeliver@test>\r\n\r\n"), body...)
	files := storedMessages(t, maildir)
	var found bool
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && bytes.Equal(b, msg) {
			found = true
		}
	}
	if len(files) != newBefore+1 || !found {
		t.Errorf("new store: %d messages (was %d), the 45 MB one byte for byte: %v", len(files), newBefore, found)
	}
	f, err := os.Open(spoolPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	added, err := io.ReadAll(io.NewSectionReader(f, oldBefore.Size(), 1<<40))
	if err != nil {
		t.Fatal(err)
	}
	lf := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	lf = bytes.Replace(lf, []byte("\n\nFrom the start"), []byte("\n\n>From the start"), 1)
	fromLine, rest, _ := bytes.Cut(bytes.TrimLeft(added, "\n"), []byte("\n"))
	if !bytes.HasPrefix(fromLine, []byte("From sender@example.com ")) || !bytes.Equal(rest, append(lf, '\n')) {
		t.Errorf("old mbox: appended %d bytes after From_ line %q; want the message with LF line ends and >From quoting", len(added), fromLine)
	}
}
