package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mailmig/server/auth"
	"mailmig/state"
)

// TestPasswdOwnPassword: `mailmig passwd` run by real Unix users (made
// with useradd, run through setpriv) changes the caller's own accounts
// password after checking the current one; a user of the crypt source is
// sent to passwd; installed setgid it refuses a configuration chosen by
// the caller.
func TestPasswdOwnPassword(t *testing.T) {
	w := newSiteWorld(t, "")
	acct := w.addUser("a", true)  // accounts user (and a shadow line)
	crypt := w.addUser("c", true) // only in the shadow copy
	if out, errOut, code := w.mailmigAs("", nil, "acct-pw-1\n", "user", "add", acct); code != 0 {
		t.Fatalf("user add: %d %s %s", code, out, errOut)
	}
	// The state database as a setgid mailmig would reach it: the
	// runner's group may write it.
	uid, gid := w.ids(w.runner)
	must(t, filepath.Walk(w.srv, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()|0o070)
	}))
	groups := []string{w.runner}

	out, errOut, code := w.mailmigAs(acct, groups, "wrong-pw\nnew-password-2\nnew-password-2\n", "passwd")
	if code != 1 || !strings.Contains(errOut, "current password is wrong") {
		t.Errorf("wrong current password: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = w.mailmigAs(acct, groups, "acct-pw-1\nnew-password-2\nnew-password-3\n", "passwd")
	if code != 1 || !strings.Contains(errOut, "differ") {
		t.Errorf("different new passwords: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = w.mailmigAs(acct, groups, "acct-pw-1\nnew-password-2\nnew-password-2\n", "passwd")
	if code != 0 || !strings.Contains(out, acct+": mail password changed") {
		t.Fatalf("passwd: exit %d\n%s%s", code, out, errOut)
	}
	db, err := state.Open(filepath.Join(w.srv, "state.db"))
	must(t, err)
	src := auth.AccountsSource{DB: db}
	if err := src.Verify(context.Background(), acct, "new-password-2"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if err := src.Verify(context.Background(), acct, "acct-pw-1"); err == nil {
		t.Error("old password still works")
	}
	db.Close()

	out, errOut, code = w.mailmigAs(crypt, groups, "old-password\nnew-password-2\nnew-password-2\n", "passwd")
	if code != 1 || !strings.Contains(errOut, "your usual login password; change it where you always did") {
		t.Errorf("crypt user: exit %d\n%s%s", code, out, errOut)
	}

	// Installed setgid (here: to the runner's group), the caller cannot
	// point it at a configuration of their own.
	bin := filepath.Join(w.srv, "mailmig-setgid")
	data, err := os.ReadFile(w.bin)
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	must(t, os.Chown(bin, 0, gid))
	must(t, os.Chmod(bin, 0o755|os.ModeSetgid))
	cu, cg := w.ids(crypt)
	cmd := exec.Command("setpriv", fmt.Sprintf("--reuid=%d", cu), fmt.Sprintf("--regid=%d", cg), "--clear-groups", bin, "--config", w.config, "passwd")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "not allowed when installed setgid") {
		t.Errorf("setgid with --config: %v %s", err, stderr.String())
	}
}
