package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoginCheckBeforeDual: the runner asks the password sources whether
// a user can log in before dual delivery; a user who cannot (locked in
// the shadow file, or in no source at all) stops in needs-attention with
// "no login", enqueue warns at once, and the confirmation mail says
// which password to use.
func TestLoginCheckBeforeDual(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 20<<10, "alice", "lock", "nopw", "acct")
	shadow := filepath.Join(data, "old", "shadow")
	lines := strings.Split(strings.TrimSpace(string(mustRead(t, shadow))), "\n")
	var keep []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "lock:"):
			keep = append(keep, "lock:!"+strings.SplitN(l, ":", 3)[1]+":19000:0:99999:7:::")
		case strings.HasPrefix(l, "nopw:"), strings.HasPrefix(l, "acct:"):
		default:
			keep = append(keep, l)
		}
	}
	if err := os.WriteFile(shadow, []byte(strings.Join(keep, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	createUser(t, data, "acct", "acct-pw")

	out, errOut, code := runMailmig(t, data, "enqueue", "alice", "lock", "nopw", "acct")
	if code != 0 {
		t.Fatalf("enqueue: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"lock: warning: cannot log in to the new server: account locked or without password in " + shadow + " (line 2)",
		"nopw: warning: cannot log in to the new server: no account in any password source (accounts, crypt)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("enqueue does not warn %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "alice:") || strings.Contains(errOut, "acct:") {
		t.Errorf("enqueue warns about users who can log in:\n%s", errOut)
	}

	mustRun(t, data)
	wantStates(t, data, map[string]string{"alice": "confirm", "acct": "confirm",
		"lock": "needs-attention (no login: account locked or without password in " + shadow + " (line 2))",
		"nopw": "needs-attention (no login: no account in any password source (accounts, crypt))"})
	maildir := func(u string) string { return filepath.Join(data, "mail", u, "Maildir") }
	if conf := findMail(t, maildir("alice"), "mailmig.confirm."); conf == nil || !strings.Contains(string(conf), "your usual login password") {
		t.Errorf("alice's confirmation does not say which password:\n%s", conf)
	}
	if conf := findMail(t, maildir("acct"), "mailmig.confirm."); conf == nil || !strings.Contains(string(conf), "your password for the new mail server") {
		t.Errorf("acct's confirmation does not say which password:\n%s", conf)
	}
	if _, err := os.Stat(maildir("nopw")); err == nil {
		t.Error("nopw's new store was prepared although nopw cannot log in")
	}

	// The postmaster gives nopw an account; a retry moves on.
	createUser(t, data, "nopw", "new-pw")
	mustMailmig(t, data, "run", "--once", "--retry", "nopw")
	wantStates(t, data, map[string]string{"nopw": "confirm"})
}
