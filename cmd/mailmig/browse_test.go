package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Folder browsers of real clients reaching a migrated three-level tree
// through `mailmig serve`, driven in tmux as a user would (issue 11: the
// levels that are not mailboxes were invisible, so alpine's and mutt's
// browsers could not get to lists/debian-devel or projects/2009/foo).

// tmuxSession runs argv in a detached tmux session of its own server
// (socket in a temporary directory) and returns helpers to type and read
// the screen.
type tmuxSession struct {
	t      *testing.T
	tmux   string
	socket string
}

func startTmux(t *testing.T, env []string, argv ...string) *tmuxSession {
	t.Helper()
	tm := &tmuxSession{t: t, tmux: requireTool(t, "tmux"), socket: filepath.Join(t.TempDir(), "tmux.sock")}
	args := append([]string{"-S", tm.socket, "new-session", "-d", "-x", "120", "-y", "40", "--"}, argv...)
	cmd := exec.Command(tm.tmux, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		exec.Command(tm.tmux, "-S", tm.socket, "kill-server").Run()
	})
	return tm
}

// keys types keys (tmux key names, e.g. "Enter", or literal text).
func (tm *tmuxSession) keys(keys ...string) {
	tm.t.Helper()
	args := append([]string{"-S", tm.socket, "send-keys", "-t", "0"}, keys...)
	if out, err := exec.Command(tm.tmux, args...).CombinedOutput(); err != nil {
		tm.t.Fatalf("send-keys %v: %v\n%s", keys, err, out)
	}
}

func (tm *tmuxSession) screen() string {
	out, err := exec.Command(tm.tmux, "-S", tm.socket, "capture-pane", "-p", "-t", "0").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(capture-pane: %v: %s)", err, out)
	}
	return string(out)
}

// waitFor waits until the screen shows text, up to 20 s.
func (tm *tmuxSession) waitFor(text string) string {
	tm.t.Helper()
	return tm.waitForAny(text)
}

// waitForAny waits until the screen shows one of texts, up to 20 s.
func (tm *tmuxSession) waitForAny(texts ...string) string {
	tm.t.Helper()
	var s string
	for i := 0; i < 200; i++ {
		s = tm.screen()
		for _, text := range texts {
			if strings.Contains(s, text) {
				return s
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	tm.t.Fatalf("screen never showed %q:\n%s", texts, s)
	return s
}

// browseTree makes alice's migrated-looking tree: messages only in the
// deepest folders, the levels above them not mailboxes.
func browseTree(t *testing.T, addr string) {
	t.Helper()
	c := imapLogin(t, addr, "alice", "alice-pw")
	defer c.Close()
	for _, f := range []string{"lists/debian/devel", "projects/2009/foo"} {
		if err := c.Create(f, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("From: list@example.org\r\nTo: alice@example.org\r\nSubject: deep in %s\r\nDate: Wed, 07 Oct 2009 12:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n\r\nhello\r\n", f, strings.ReplaceAll(f, "/", "."))
		cmd := c.Append(f, int64(len(body)), &imap.AppendOptions{})
		io.WriteString(cmd, body)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// CREATE makes no mailbox of the levels above (Maildir++ has
	// .projects.2009.foo only), as a conversion of ~/mail/projects/2009/foo
	// leaves them.
}

// TestMuttBrowsesNestedFolders: mutt's folder browser, over IMAPS that
// checks the certificate of the --data world (ssl_ca_certificates_file)
// and with COMPRESS=DEFLATE, walks lists/, debian/ and opens devel.
func TestMuttBrowsesNestedFolders(t *testing.T) {
	mutt := requireTool(t, "mutt")
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServe(t, dir)
	browseTree(t, s.Addr("imap"))
	addr := s.Addr("imaps")
	home := t.TempDir()
	rc := filepath.Join(home, "muttrc")
	os.WriteFile(rc, []byte(fmt.Sprintf(`set folder="imaps://%s/"
set spoolfile="+INBOX"
set imap_user="alice"
set imap_pass="alice-pw"
set ssl_force_tls=yes
set ssl_ca_certificates_file="%s"
set imap_list_subscribed=no
set mail_check=1000
set sort=date
set header_cache=""
set message_cachedir=""
set move=no
set confirmappend=no
set imap_deflate=yes
`, addr, filepath.Join(dir, "tls", "cert.pem"))), 0o600)
	tm := startTmux(t, []string{"HOME=" + home, "TERM=xterm", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, mutt, "-n", "-d", "2", "-F", rc)
	tm.waitFor("Mutt")
	tm.keys("c")
	tm.waitFor("Open mailbox")
	tm.keys("?")
	scr := tm.waitFor("projects")
	if !strings.Contains(scr, "lists") {
		t.Errorf("top level lacks lists:\n%s", scr)
	}
	// Into lists/, then debian/, then open devel.
	for _, step := range []struct{ entry, next string }{{"lists", "debian"}, {"debian", "devel"}} {
		tm.keys("/", step.entry, "Enter")
		time.Sleep(300 * time.Millisecond)
		tm.keys("Enter")
		tm.waitFor(step.next)
	}
	tm.keys("/", "devel", "Enter")
	time.Sleep(300 * time.Millisecond)
	tm.keys("Enter")
	t.Cleanup(func() {
		if t.Failed() {
			dbg, _ := os.ReadFile(filepath.Join(home, ".muttdebug0"))
			t.Logf("mutt's debug log ends:\n%s", dbg[max(0, len(dbg)-4000):])
		}
	})
	scr = tm.waitFor("deep in lists/debian/devel")
	t.Logf("mutt in lists/debian/devel:\n%s", scr)
	if !strings.Contains(scr, "lists/debian/devel") {
		t.Errorf("mutt did not open lists/debian/devel:\n%s", scr)
	}
	tm.keys("q")
	// imap_deflate is on: the walk above went through COMPRESS=DEFLATE
	// (RFC 4978), whose commands mutt ends with zlib's partial flush.
	dbg, err := os.ReadFile(filepath.Join(home, ".muttdebug0"))
	if err != nil || !strings.Contains(string(dbg), "COMPRESS DEFLATE") {
		t.Errorf("mutt's debug log shows no COMPRESS DEFLATE (%v)", err)
	}
}

// TestAlpineBrowsesNestedFolders: alpine's folder list walks projects/
// and 2009/ and opens foo, as a new user would after the migration, over
// IMAPS whose certificate (the --data world's) c-client validates
// through SSL_CERT_FILE.
func TestAlpineBrowsesNestedFolders(t *testing.T) {
	alpine := requireTool(t, "alpine")
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServe(t, dir)
	browseTree(t, s.Addr("imap"))
	addr := s.Addr("imaps")
	home := t.TempDir()
	// c-client matches the certificate's DNS names, not its IP
	// addresses: the self-signed certificate names localhost.
	host := "{" + strings.Replace(addr, "127.0.0.1", "localhost", 1) + "/imap/norsh/ssl/user=alice}"
	rc := filepath.Join(home, ".pinerc")
	os.WriteFile(rc, []byte(fmt.Sprintf(`personal-name=Alice
user-domain=example.org
inbox-path=%sINBOX
folder-collections="Mail" %s[]
feature-list=quit-without-confirm,
	disable-password-caching,
	skip-welcome-screen
`, host, host)), 0o600)
	tm := startTmux(t, []string{"HOME=" + home, "TERM=xterm", "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
		"SSL_CERT_FILE=" + filepath.Join(dir, "tls", "cert.pem")}, alpine, "-p", rc, "-d", "0")
	// A first start greets the user; then INBOX asks for the password.
	scr := tm.waitForAny("PASSWORD", "GREETING TEXT")
	if strings.Contains(scr, "GREETING TEXT") {
		tm.keys("E")
		tm.waitFor("PASSWORD")
	}
	tm.keys("alice-pw", "Enter")
	if scr := tm.waitForAny("Preserve password", "Folder: INBOX"); strings.Contains(scr, "Preserve password") {
		tm.keys("N")
	}
	tm.waitFor("Folder: INBOX")
	tm.keys("L")
	scr = tm.waitFor("projects")
	if !strings.Contains(scr, "lists") {
		t.Errorf("folder list lacks lists:\n%s", scr)
	}
	for _, step := range []struct{ entry, next string }{{"projects", "2009"}, {"2009", "foo"}} {
		tm.keys("W", step.entry, "Enter")
		time.Sleep(300 * time.Millisecond)
		tm.keys("Enter")
		tm.waitFor(step.next)
	}
	tm.keys("W", "foo", "Enter")
	time.Sleep(300 * time.Millisecond)
	tm.keys("Enter")
	// A second connection for the folder may ask for the password again.
	if scr := tm.waitForAny("deep in projects/2009/foo", "ENTER PASSWORD"); !strings.Contains(scr, "deep in") {
		tm.keys("alice-pw", "Enter")
		if scr := tm.waitForAny("deep in projects/2009/foo", "Preserve password"); !strings.Contains(scr, "deep in") {
			tm.keys("N")
		}
	}
	scr = tm.waitFor("deep in projects/2009/foo")
	t.Logf("alpine in projects/2009/foo:\n%s", scr)
}
