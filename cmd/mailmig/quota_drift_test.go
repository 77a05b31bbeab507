package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore/dovecottest"
)

// maildirsizeSum sums the usage lines of a maildirsize file.
func maildirsizeSum(t *testing.T, path string) (bytes, msgs int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for _, l := range lines[1:] {
		var b, c int64
		fmt.Sscan(l, &b, &c)
		bytes, msgs = bytes+b, msgs+c
	}
	return bytes, msgs
}

// TestQuotaFollowsTheMigration is issue 9 item 7 through the binary: the
// copy, dual delivery, and the cutover's incremental pass (which opens
// the store without limits) leave a maildirsize that dovecot's own
// recalculation (doveadm quota recalc, maildir backend) agrees with; a
// copy that takes a user over quota stops them in needs-attention, or,
// with migration.over_quota = "warn", records an over-quota event and
// goes on.
func TestQuotaFollowsTheMigration(t *testing.T) {
	dovecottest.Require(t)
	data := t.TempDir()
	migWorld(t, data, 300<<10, "quinn", "rex")
	cfg := filepath.Join(data, "mailmig.toml")
	must(t, os.WriteFile(cfg, []byte("[limits]\nquota = \"100MB\"\n"), 0o644))
	mm := func(args ...string) string {
		t.Helper()
		return mustMailmig(t, data, append([]string{"--config", cfg}, args...)...)
	}
	createUser(t, data, "rex", "rex-pw")
	mm("user", "quota", "--quota", "50KB", "rex")
	mm("enqueue", "--folders", "quinn", "rex")
	mm("run", "--once")
	states := queueStates(t, data)
	if !strings.HasPrefix(states["quinn"], "confirm") {
		t.Fatalf("quinn: %q", states["quinn"])
	}
	if st := states["rex"]; !strings.HasPrefix(st, "needs-attention") || !strings.Contains(st, "over quota after the copy") || !strings.Contains(st, "of 50 KB") {
		t.Fatalf("rex: %q, want needs-attention over quota", st)
	}

	// quinn: one message through dual delivery, one that reaches the old
	// spool behind mailmig's back (the cutover pass carries it over).
	if code, route := deliverMsg(t, data, "quinn", mailWithID("dual-one")); code != 0 || route != "both" {
		t.Fatalf("deliver: %d %q", code, route)
	}
	spool := filepath.Join(data, "old", "spool", "quinn")
	f, err := os.OpenFile(spool, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	fmt.Fprintf(f, "From someone@example.net %s\n%s\n", time.Now().UTC().Format("Mon Jan _2 15:04:05 2006"), strings.Repeat("x", 1)+mailWithID("behind-the-back"))
	must(t, f.Close())
	mm("stop", "quinn")
	mm("run", "--once")
	if st := queueStates(t, data)["quinn"]; !strings.HasPrefix(st, "done") {
		t.Fatalf("quinn after cutover: %q", st)
	}
	root := filepath.Join(data, "mail", "quinn", "Maildir")
	if storeIDs(t, root)["behind-the-back"] != 1 {
		t.Fatalf("the cutover pass did not carry the late message over")
	}
	ourBytes, ourMsgs := maildirsizeSum(t, filepath.Join(root, "maildirsize"))

	// dovecot recalculates from the files.
	d := dovecottest.New(t, root)
	if _, err := d.Status("INBOX"); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(d.ConfigPath())
	must(t, err)
	qconf := filepath.Join(filepath.Dir(d.ConfigPath()), "quota.conf")
	extra := "\nmail_plugins = $mail_plugins quota\nplugin {\n  quota = maildir:User quota\n  quota_rule = *:storage=100M\n}\n"
	must(t, os.WriteFile(qconf, append(conf, extra...), 0o644))
	cmd := exec.Command(d.Bin, "-c", qconf, "quota", "recalc")
	cmd.Env = d.Env()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("doveadm quota recalc: %v\n%s", err, out)
	}
	theirBytes, theirMsgs := maildirsizeSum(t, filepath.Join(root, "maildirsize"))
	if ourBytes != theirBytes || ourMsgs != theirMsgs {
		t.Errorf("maildirsize after the migration: %d bytes %d messages; dovecot recalculates %d bytes %d messages", ourBytes, ourMsgs, theirBytes, theirMsgs)
	}

	// rex with over_quota = "warn": goes on, with an event.
	must(t, os.WriteFile(cfg, []byte("[limits]\nquota = \"100MB\"\n[migration]\nover_quota = \"warn\"\n"), 0o644))
	mm("run", "--once", "--retry", "rex")
	if st := queueStates(t, data)["rex"]; !strings.HasPrefix(st, "confirm") {
		t.Fatalf("rex with over_quota = warn: %q", st)
	}
	if ev := mm("events", "rex"); !strings.Contains(ev, "over-quota") {
		t.Errorf("no over-quota event:\n%s", ev)
	}
	// The confirmation rex got says so, with the figures quinn's did not.
	for u, want := range map[string]bool{"rex": true, "quinn": false} {
		var confirm string
		for _, m := range maildirMessages(t, filepath.Join(data, "mail", u, "Maildir")) {
			if strings.Contains(string(m.data), "Subject: Your mailbox has moved") {
				confirm = strings.ReplaceAll(string(m.data), "\r\n", "\n")
			}
		}
		if confirm == "" {
			t.Fatalf("%s: no confirmation in the new store", u)
		}
		if got := strings.Contains(confirm, "OVER ITS QUOTA after the copy: "); got != want {
			t.Errorf("%s: over-quota warning in the confirmation = %v, want %v:\n%s", u, got, want, confirm)
		}
		if want {
			mustContain(t, "rex's confirmation", confirm, "of 50 KB (", "new mail to you may be refused")
		}
	}
}
