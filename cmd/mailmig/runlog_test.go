package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunDaemonQuietWhileWaiting (issue 9 item 11): the daemon logs a
// "queue pass" line when a pass moved someone, not on every poll while
// users wait for their reply.
func TestRunDaemonQuietWhileWaiting(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 20<<10, "wendy")
	mustMailmig(t, data, "enqueue", "wendy")
	cmd := mailmigCmd(data, "run", "--poll", "100ms", "--no-progress")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasPrefix(queueStates(t, data)["wendy"], "confirm") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("wendy did not reach confirm:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // about 15 polls with wendy waiting
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	// Each step logged its own line; the waiting polls add nothing.
	if n := strings.Count(out.String(), `msg="queue pass"`); n > 1 {
		t.Errorf("%d queue pass lines in 15 polls with wendy waiting, want at most 1:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "step ended") {
		t.Errorf("no step logged:\n%s", out.String())
	}
}

// TestReloadSaysWhatNeedsARestart (issue 9 item 10): after SIGHUP every
// changed setting is either applied (the spam folder: the next spam
// message goes there) or logged as needing a restart
// (limits.message_size, whose old limit stays in force).
func TestReloadSaysWhatNeedsARestart(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServeConfig(t, dir, "[limits]\nmessage_size = \"1MB\"\n")
	waitLog(t, s, "mailmig serving")
	must(t, os.WriteFile(filepath.Join(dir, "test.toml"), []byte("[limits]\nmessage_size = \"2KB\"\n[sieve]\nspam_folder = \"Spam\"\n"), 0o644))
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, s, "configuration reloaded")
	log := s.Log()
	if !strings.Contains(log, `msg="reload: setting changed but needs a restart" key=limits.message_size running=1MB file=2KB`) {
		t.Errorf("message_size not reported as needing a restart:\n%s", log)
	}
	if !strings.Contains(log, `msg="reload: applied" key=sieve.spam_folder`) {
		t.Errorf("spam_folder not reported as applied:\n%s", log)
	}
	// What the log says is what happens: a 5 KB message still fits the
	// running 1 MB limit, and spam goes to the new folder.
	mdir := t.TempDir()
	big := writeMail(t, mdir, "big", "bob@remote.test", "alice@example.org", "five KB", "X-Pad: "+strings.Repeat("p", 5000))
	spam := writeMail(t, mdir, "spam", "bob@remote.test", "alice@example.org", "buy now", "X-Spam-Level: **********")
	replies := pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{
		{From: "bob@remote.test", Rcpts: []string{"alice@example.org"}, File: big},
		{From: "bob@remote.test", Rcpts: []string{"alice@example.org"}, File: spam},
	})
	if replies[0]["alice@example.org"].Code != 250 || replies[1]["alice@example.org"].Code != 250 {
		t.Fatalf("LMTP: %+v", replies)
	}
	if got := mailIn(t, dir, "alice", "Spam"); len(got) != 1 {
		t.Errorf("spam after the reload went elsewhere: Spam = %v", got)
	}
}

// TestConfirmationSaysWhereSpamGoes (issue 9 item 9): a user who had a
// "Spam" folder is told spam goes there, and it does.
func TestConfirmationSaysWhereSpamGoes(t *testing.T) {
	data := t.TempDir()
	trees := migWorld(t, data, 20<<10, "sam")
	must(t, os.MkdirAll(filepath.Join(trees["sam"].Home, "mail"), 0o755))
	must(t, os.WriteFile(filepath.Join(trees["sam"].Home, "mail", "Spam"), []byte(siteMbox), 0o600))
	mustMailmig(t, data, "enqueue", "--folders", "sam")
	mustRun(t, data)
	if st := queueStates(t, data)["sam"]; !strings.HasPrefix(st, "confirm") {
		t.Fatalf("sam: %q", st)
	}
	root := filepath.Join(data, "mail", "sam", "Maildir")
	found := false
	for _, m := range maildirMessages(t, root) {
		if strings.Contains(string(m.data), `spam goes to your folder "Spam"`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("the confirmation does not say spam goes to Spam")
	}
	before := len(mailIn(t, data, "sam", "Spam"))
	msg := "From: spammer@example.net\nTo: sam@example.org\nSubject: cheap\nX-Spam-Level: **********\n\nbuy\n"
	if code, _ := deliverMsg(t, data, "sam", msg); code != 0 {
		t.Fatalf("deliver: %d", code)
	}
	if after := len(mailIn(t, data, "sam", "Spam")); after != before+1 {
		t.Errorf("Spam had %d messages, now %d: spam went elsewhere", before, after)
	}
	if got := mailIn(t, data, "sam", "junk"); len(got) != 0 {
		t.Errorf("a second spam folder junk appeared: %v", got)
	}
}

// TestFinalMailNamesNewFolders (issue 9 item 8): a folder made on the old
// server after the copy is named in the final mail as copied now, not
// counted as mail that reached the old mailbox after the copy; late INBOX
// mail is counted as such.
func TestFinalMailNamesNewFolders(t *testing.T) {
	data := t.TempDir()
	trees := migWorld(t, data, 20<<10, "fay")
	mustMailmig(t, data, "enqueue", "--folders", "fay")
	mustRun(t, data)
	if st := queueStates(t, data)["fay"]; !strings.HasPrefix(st, "confirm") {
		t.Fatalf("fay: %q", st)
	}
	must(t, os.MkdirAll(filepath.Join(trees["fay"].Home, "mail"), 0o755))
	must(t, os.WriteFile(filepath.Join(trees["fay"].Home, "mail", "Later"), []byte(siteMbox), 0o600))
	f, err := os.OpenFile(filepath.Join(data, "old", "spool", "fay"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString("From late@example.net Sat Jan  3 01:05:34 2009\n" + mailWithID("late-one") + "\n")
	must(t, err)
	must(t, f.Close())
	mustMailmig(t, data, "stop", "fay")
	mustRun(t, data)
	if st := queueStates(t, data)["fay"]; !strings.HasPrefix(st, "done") {
		t.Fatalf("fay after cutover: %q", st)
	}
	var final string
	for _, m := range maildirMessages(t, filepath.Join(data, "mail", "fay", "Maildir")) {
		if strings.Contains(string(m.data), "is complete") {
			final = string(m.data)
		}
	}
	if final == "" {
		t.Fatal("no final mail")
	}
	final = strings.ReplaceAll(final, "\r\n", "\n")
	mustContain(t, "final mail", final, "1 message(s) that reached the old\nmailbox after the copy",
		"These folders were not part of the first copy", "Later", "2 messages")
	if strings.Contains(final, "3 message(s)") {
		t.Errorf("the new folder's messages were counted as late mail:\n%s", final)
	}
}
