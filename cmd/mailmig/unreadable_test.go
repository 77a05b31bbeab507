package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const siteMbox = `From alice@example.org Sat Jan  3 01:05:34 2009
From: alice@example.org
Subject: one

body one

From bob@example.org Sat Jan  3 01:06:34 2009
From: bob@example.org
Subject: two

body two

`

// TestUnreadableOldMailNeedsAttention is issue 9 item 1 on real Unix
// users: the runner is a user of its own (not root, not the mail users,
// member of group mail as docs/deploying.md says), and
//   - a spool 0600 user:mail (as Postfix's local(8) makes it) it cannot
//     read,
//   - a 0700 home hiding ~/mail and ~/.mailboxlist,
//   - a FIFO where the INBOX spool should be
//
// are never skipped in silence: `mailmig convert` exits 2 naming each
// path and reason, `mailmig run` puts the user in needs-attention with
// path and reason (at once, not after retries; never confirm), and with
// the privileges docs/deploying.md gives the runner (CAP_DAC_READ_SEARCH)
// the same users go through with every folder.
func TestUnreadableOldMailNeedsAttention(t *testing.T) {
	w := newSiteWorld(t, "")
	spoolOnly := w.addUser("a", true) // spool 0600 a:mail
	hidden := w.addUser("b", true)    // spool readable by group mail, home 0700
	fifo := w.addUser("c", true)      // INBOX is a FIFO

	ua, _ := w.ids(spoolOnly)
	w.writeAs(filepath.Join(w.spool, spoolOnly), []byte(siteMbox), ua, w.mailG, 0o600)
	ub, gb := w.ids(hidden)
	w.writeAs(filepath.Join(w.spool, hidden), []byte(siteMbox), ub, w.mailG, 0o660)
	w.writeAs(filepath.Join(w.home(hidden), "mail", "work"), []byte(siteMbox), ub, gb, 0o600)
	must(t, os.Chown(filepath.Join(w.home(hidden), "mail"), ub, gb))
	must(t, os.Chmod(filepath.Join(w.home(hidden), "mail"), 0o700))
	w.writeAs(filepath.Join(w.home(hidden), ".mailboxlist"), []byte("mail/work\n"), ub, gb, 0o600)
	fifoPath := filepath.Join(w.spool, fifo)
	if out, err := exec.Command("mkfifo", "-m", "0660", fifoPath).CombinedOutput(); err != nil {
		t.Fatalf("mkfifo: %v\n%s", err, out)
	}
	uc, _ := w.ids(fifo)
	must(t, os.Chown(fifoPath, uc, w.mailG))

	mail := []string{"mail"}
	// convert by hand, as the runner: exit 2 and every path named.
	for _, tc := range []struct{ user, path, reason string }{
		{spoolOnly, filepath.Join(w.spool, spoolOnly), "permission denied"},
		{hidden, filepath.Join(w.home(hidden), "mail"), "permission denied"},
		{hidden, filepath.Join(w.home(hidden), ".mailboxlist"), "permission denied"},
		{fifo, fifoPath, "named pipe (FIFO)"},
	} {
		out, errs, code := w.mailmigAs(w.runner, mail, "", "convert", "--user", tc.user, "--no-fsync")
		if code != exitConvertPartial {
			t.Errorf("convert --user %s as the runner: exit %d, want %d\n%s\n%s", tc.user, code, exitConvertPartial, out, errs)
		}
		want := "NOT READ (may hold mail): " + tc.path + ": "
		if !strings.Contains(out, want) || !strings.Contains(out, tc.reason) {
			t.Errorf("convert --user %s: output lacks %q … %q:\n%s\n%s", tc.user, want, tc.reason, out, errs)
		}
	}
	// The hidden user's INBOX was copied: what could be read is not lost.
	if n := countFiles(t, filepath.Join(w.srv, "mail", hidden, "Maildir", "cur")) + countFiles(t, filepath.Join(w.srv, "mail", hidden, "Maildir", "new")); n != 2 {
		t.Errorf("%s: %d messages in the new INBOX after convert, want 2", hidden, n)
	}
	os.RemoveAll(filepath.Join(w.srv, "mail", hidden)) // the runner starts afresh

	// The queue, worked by the runner.
	if out, errs, code := w.mailmigAs(w.runner, mail, "", "enqueue", "--folders", spoolOnly, hidden, fifo); code != 0 {
		t.Fatalf("enqueue: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code := w.mailmigAs(w.runner, mail, "", "run", "--once", "--no-progress", "--notify-old=false")
	t.Logf("run as the runner: exit %d\n%s\n%s", code, out, errs)
	for _, tc := range []struct{ user, path, reason string }{
		{spoolOnly, filepath.Join(w.spool, spoolOnly), "permission denied"},
		{hidden, filepath.Join(w.home(hidden), "mail"), "permission denied"},
		{fifo, fifoPath, "named pipe (FIFO)"},
	} {
		st, reason := w.status(tc.user)
		if st != "needs-attention" || !strings.Contains(reason, tc.path) || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s after run: state %q reason %q; want needs-attention naming %s and %q", tc.user, st, reason, tc.path, tc.reason)
		}
		ev, _, _ := w.mailmigAs(w.runner, nil, "", "events", tc.user)
		if !strings.Contains(ev, tc.path) {
			t.Errorf("%s: events do not name %s:\n%s", tc.user, tc.path, ev)
		}
	}

	// With the runner's privileges from docs/deploying.md (the mailmig
	// user, group mail, CAP_DAC_READ_SEARCH) the home is readable: retry
	// copies the folder too. The FIFO stays an error.
	w.mailmigAs(w.runner, mail, "", "--log-level", "warn", "run", "--once", "--no-progress", "--notify-old=false", "--retry", hidden)
	st, reason := w.status(hidden)
	if st != "needs-attention" {
		t.Fatalf("%s retried without privileges: state %q (%s)", hidden, st, reason)
	}
	out, errs, code = w.mailmigCapAs(w.runner, mail, "--log-level", "warn", "run", "--once", "--no-progress", "--notify-old=false", "--retry", hidden, "--retry", fifo)
	if st, reason := w.status(hidden); st != "confirm" {
		t.Fatalf("%s with CAP_DAC_READ_SEARCH: state %q (%s)\nexit %d\n%s\n%s", hidden, st, reason, code, out, errs)
	}
	if n := countFiles(t, filepath.Join(w.srv, "mail", hidden, "Maildir", ".work", "cur")); n != 2 {
		t.Errorf("%s: folder work has %d messages in the new store, want 2", hidden, n)
	}
	if st, reason := w.status(fifo); st != "needs-attention" || !strings.Contains(reason, "named pipe") {
		t.Errorf("%s (FIFO) with privileges: state %q (%s), want needs-attention", fifo, st, reason)
	}
	// Sources never modified: the spool keeps its owner and mode.
	var sys syscall.Stat_t
	must(t, syscall.Stat(filepath.Join(w.spool, spoolOnly), &sys))
	if int(sys.Uid) != ua || int(sys.Gid) != w.mailG || sys.Mode&0o7777 != 0o600 {
		t.Errorf("spool of %s is now %d:%d %o", spoolOnly, sys.Uid, sys.Gid, sys.Mode&0o7777)
	}
}

// mailmigCapAs runs the binary as asUser with CAP_DAC_READ_SEARCH in its
// ambient set, as the mailmig-run systemd unit gives it.
func (w *siteWorld) mailmigCapAs(asUser string, groups []string, args ...string) (string, string, int) {
	w.t.Helper()
	uid, gid := w.ids(asUser)
	// setpriv keeps the ambient capability across the uid change.
	sp := []string{"--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search",
		"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--groups=" + strings.Join(groups, ","), w.bin, "--config", w.config}
	cmd := exec.Command("setpriv", append(sp, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run()
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// countFiles counts the entries of dir (0 if missing).
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}
