package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOwnQuotaOverControlSocket (issue 9 item 7): a Unix user (made with
// useradd, removed after) runs `mailmig quota` through setpriv without
// any access to the store or the state database and gets their own
// report — the same the postmaster's `mailmig quota USER` prints — from
// the running server; they cannot ask for anyone else's, and every other
// control operation refuses them while root still gets them.
func TestOwnQuotaOverControlSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test creates Unix users and needs root (make test runs as root)")
	}
	for _, tool := range []string{"useradd", "userdel", "setpriv", "python3"} {
		requireTool(t, tool)
	}
	base, err := os.MkdirTemp("", "mailmig-quota-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o711))
	bin := filepath.Join(base, "mailmig")
	copyFile(t, mailmigBin(t), bin, 0o755)
	data := filepath.Join(base, "data")
	must(t, os.Mkdir(data, 0o711)) // reachable, not listable

	prefix := fmt.Sprintf("mq%d", os.Getpid()%100000)
	ids := map[string][2]int{}
	for _, s := range []string{"a", "b"} {
		name := prefix + s
		if out, err := exec.Command("useradd", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
				t.Errorf("userdel %s: %v\n%s", name, err, out)
			}
		})
		out, err := exec.Command("id", "-u", name).Output()
		must(t, err)
		uid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		out, err = exec.Command("id", "-g", name).Output()
		must(t, err)
		gid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		ids[name] = [2]int{uid, gid}
	}
	ua, ub := prefix+"a", prefix+"b"
	// ua is migrated (a store with mail) and has an account with a quota;
	// ub is a Unix user the mail server has no account for.
	migWorld(t, data, 40<<10, ua)
	createUser(t, data, ua, "pw-a")
	mustMailmig(t, data, "user", "quota", "--quota", "500KB", ua)
	mustMailmig(t, data, "enqueue", "--folders", ua)
	mustRun(t, data)
	startServe(t, data)
	if fi, err := os.Stat(filepath.Join(data, "control.sock")); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("control socket: %v %v", fi, err)
	}

	as := func(name string, args ...string) (string, string, int) {
		t.Helper()
		id := ids[name]
		cmd := exec.Command("setpriv", append([]string{"--reuid=" + strconv.Itoa(id[0]), "--regid=" + strconv.Itoa(id[1]), "--clear-groups"}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "LANG=C.UTF-8", "MAILMIG_CONFIG="}
		cmd.Dir = "/"
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}

	want := mustMailmig(t, data, "quota", ua)
	if !strings.HasPrefix(want, ua+": ") || !strings.Contains(want, "of 500 KB") {
		t.Fatalf("postmaster's report: %q", want)
	}
	got, errOut, code := as(ua, bin, "--data", data, "quota")
	if code != 0 || got != want {
		t.Errorf("%s's own quota: exit %d, %q (stderr %s); the postmaster's report is %q", ua, code, got, errOut, want)
	}
	// The user could not have read it themselves.
	if _, errOut, code := as(ua, bin, "--data", data, "quota", ua); code == 0 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("%s read the state database: exit %d: %s", ua, code, errOut)
	}
	// ub: no account on the new server.
	if out, errOut, code := as(ub, bin, "--data", data, "quota"); code == 0 || out != "" || !strings.Contains(errOut, ub) {
		t.Errorf("%s (no account): exit %d: %q %s", ub, code, out, errOut)
	}

	// Raw requests from ub: nobody else's quota, no other operation.
	raw := `
import json, socket, sys
for req in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(req.encode() + b"\n")
    print(json.dumps(json.loads(s.makefile().readline())))
    s.close()
`
	reqs := []string{
		fmt.Sprintf(`{"op":"quota","user":%q}`, ua),
		`{"op":"who","all":true}`,
		fmt.Sprintf(`{"op":"kick","user":%q}`, ua),
		`{"op":"queue-flush"}`,
		`{"op":"queue-delete","id":"x"}`,
		`{"op":"nonsense"}`,
	}
	out, errOut, code := as(ub, append([]string{"python3", "-c", raw, filepath.Join(data, "control.sock")}, reqs...)...)
	if code != 0 {
		t.Fatalf("python3 as %s: exit %d: %s", ub, code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(reqs) {
		t.Fatalf("replies: %q", out)
	}
	for i, l := range lines {
		if !strings.Contains(l, "permission denied") || strings.Contains(l, "KB used") {
			t.Errorf("%s sent %s: %s", ub, reqs[i], l)
		}
	}
	// Root still has every operation.
	if out, errOut, code := runMailmig(t, data, "who", "--all"); code != 0 {
		t.Errorf("who as root: exit %d: %s %s", code, out, errOut)
	}
}
