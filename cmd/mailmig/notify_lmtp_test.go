package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNotifyLMTPFileintoCreate: a folder that Sieve's fileinto :create
// makes during a delivery reaches an IMAP session of the same user that
// asked for NOTIFY MailboxName and message events (RFC 5465 §5.4, §6):
// a LIST for the new folder and its STATUS. The same delivery is made
// by Debian's dovecot-lda with pigeonhole to a dovecot imap session, and
// by `mailmig serve`'s LMTP to a mailmig IMAP session; what the session
// is sent unasked must agree (UIDVALIDITY values aside).
func TestNotifyLMTPFileintoCreate(t *testing.T) {
	const script = `require ["fileinto", "mailbox"]; fileinto :create "Everything";`
	msgFile := writeMail(t, t.TempDir(), "m0", "x@example.net", "bob@example.org", "m0")
	theirs := dovecotLDANotify(t, script, msgFile)

	data := t.TempDir()
	createUser(t, data, "bob", "pw-bob")
	activateScript(t, data, "bob", script)
	s := startServe(t, data)
	nc, err := net.Dial("tcp", s.Addr("imap"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	lines := notifyLineChan(nc)
	if l := <-lines; !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting %q", l)
	}
	for _, cmd := range []string{"a LOGIN bob pw-bob", "s STATUS INBOX (MESSAGES)", notifyLDACommand} {
		fmt.Fprintf(nc, "%s\r\n", cmd)
		if l := notifyUntilTag(t, lines, cmd[:2]); !strings.HasPrefix(l[len(l)-1], cmd[:2]+"OK") {
			t.Fatalf("%s: %q", cmd, l)
		}
	}
	res := pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{{From: "x@example.net", Rcpts: []string{"bob@example.org"}, File: msgFile}})
	if c := res[0]["bob@example.org"].Code; c != 250 {
		t.Fatalf("LMTP: %v", res)
	}
	ours := notifyUnasked(lines)
	if !slices.Equal(ours, theirs) {
		t.Fatalf("unasked after the delivery:\nmailmig: %q\ndovecot: %q", ours, theirs)
	}
	if len(ours) != 2 {
		t.Fatalf("expected a LIST and a STATUS: %q", ours)
	}
}

const notifyLDACommand = "a NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))"

// notifyLineChan reads lines (without line ends) from r until it fails.
func notifyLineChan(r io.Reader) <-chan string {
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		br := bufio.NewReader(r)
		for {
			l, err := br.ReadString('\n')
			if l != "" {
				ch <- strings.TrimRight(l, "\r\n")
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// notifyUntilTag returns the lines up to the one starting with tag.
func notifyUntilTag(t *testing.T, lines <-chan string, tag string) []string {
	t.Helper()
	var out []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("connection closed: %q", out)
			}
			out = append(out, l)
			if strings.HasPrefix(l, tag) {
				return out
			}
		case <-timeout:
			t.Fatalf("no %q line: %q", tag, out)
		}
	}
}

var notifyUIDValidityRE = regexp.MustCompile(`UIDVALIDITY \d+`)

// notifyUnasked collects what arrives unasked: until 1.5 s pass without a
// line once one came, at most 6 s; sorted, UIDVALIDITY values cut.
func notifyUnasked(lines <-chan string) []string {
	var out []string
	limit := time.After(6 * time.Second)
	var lull <-chan time.Time
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return out
			}
			out = append(out, notifyUIDValidityRE.ReplaceAllString(l, "UIDVALIDITY V"))
			lull = time.After(1500 * time.Millisecond)
		case <-lull:
			slices.Sort(out)
			return out
		case <-limit:
			slices.Sort(out)
			return out
		}
	}
}

// dovecotLDANotify delivers msgFile with dovecot-lda (pigeonhole running
// script) to a Maildir a dovecot imap session watches with
// notifyLDACommand, and returns what that session is sent unasked.
func dovecotLDANotify(t *testing.T, script, msgFile string) []string {
	t.Helper()
	imapBin, lda := "/usr/lib/dovecot/imap", "/usr/lib/dovecot/dovecot-lda"
	for _, b := range []string{imapBin, lda} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install dovecot-imapd and dovecot-sieve", b)
		}
	}
	// Not t.TempDir: its parent is closed to nobody, dovecot's uid.
	dir, err := os.MkdirTemp("", "mailmig-notify-lda-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	home := filepath.Join(dir, "alice")
	os.MkdirAll(filepath.Join(home, "Maildir"), 0o777)
	sieve := filepath.Join(dir, "script.sieve")
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(sieve, []byte(script+"\n"), 0o644)
	os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "%u", "Maildir")+"\n"+
		"namespace inbox {\n  separator = /\n  inbox = yes\n}\n"+
		"mailbox_idle_check_interval = 1 secs\nlog_path = /dev/stderr\npostmaster_address = postmaster@example.org\n"+
		"protocol lda {\n  mail_plugins = sieve\n}\nplugin {\n  sieve = file:"+sieve+"\n}\n"), 0o644)
	if os.Geteuid() == 0 {
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error { return os.Lchown(p, 65534, 65534) })
	}
	os.Chmod(dir, 0o777)
	command := func(args ...string) *exec.Cmd {
		env := []string{"USER=alice", "HOME=" + home, "PATH=/usr/bin:/bin"}
		if os.Geteuid() == 0 {
			return exec.Command("setpriv", append(append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i"}, env...), args...)...)
		}
		c := exec.Command(args[0], args[1:]...)
		c.Env = env
		return c
	}
	imap := command(imapBin, "-c", conf)
	stdin, err := imap.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := imap.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	imap.Stderr = &stderr
	if err := imap.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { imap.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			imap.Process.Kill()
			<-done
		}
	}()
	lines := notifyLineChan(stdout)
	if l := <-lines; !strings.HasPrefix(l, "* PREAUTH") {
		t.Fatalf("dovecot greeting %q (%s)", l, stderr.String())
	}
	for _, cmd := range []string{"s STATUS INBOX (MESSAGES)", notifyLDACommand} {
		fmt.Fprintf(stdin, "%s\r\n", cmd)
		if l := notifyUntilTag(t, lines, cmd[:2]); !strings.HasPrefix(l[len(l)-1], cmd[:2]+"OK") {
			t.Fatalf("dovecot %s: %q", cmd, l)
		}
	}
	msg, err := os.Open(msgFile)
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	deliver := command(lda, "-c", conf, "-f", "x@example.net")
	deliver.Stdin = msg
	if out, err := deliver.CombinedOutput(); err != nil {
		t.Fatalf("dovecot-lda: %v\n%s", err, out)
	}
	return notifyUnasked(lines)
}
