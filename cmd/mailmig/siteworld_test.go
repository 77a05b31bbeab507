package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// siteWorld is a real host in miniature for the site tests: Unix users
// made with useradd (removed after the test), homes with UW-IMAP's usual
// 0700, a spool directory root:mail 2775 as Debian's /var/mail, and a
// runner user that is not the mail users (the binary runs as it through
// setpriv). It needs root, as `make test` runs.
type siteWorld struct {
	t      *testing.T
	base   string // 0755, everything below
	bin    string // a copy of the binary every user can run
	spool  string
	homes  string
	srv    string // store and state, owned by the runner
	config string
	runner string // the runner's user name
	prefix string
	mailG  int // gid of "mail"
}

// newSiteWorld creates the runner user and the directories. extraConfig
// is appended to the generated configuration file.
func newSiteWorld(t *testing.T, extraConfig string) *siteWorld {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the site tests create Unix users and need root (make test runs as root)")
	}
	for _, tool := range []string{"useradd", "userdel", "setpriv", "mkfifo"} {
		requireTool(t, tool)
	}
	base, err := os.MkdirTemp("", "mailmig-site-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755))
	g, err := user.LookupGroup("mail")
	if err != nil {
		t.Fatalf("group mail: %v", err)
	}
	w := &siteWorld{t: t, base: base, prefix: fmt.Sprintf("mm%d", os.Getpid()%100000)}
	w.mailG, _ = strconv.Atoi(g.Gid)
	w.bin = filepath.Join(base, "mailmig")
	copyFile(t, mailmigBin(t), w.bin, 0o755)
	w.spool = filepath.Join(base, "spool")
	w.homes = filepath.Join(base, "home")
	w.srv = filepath.Join(base, "srv")
	for _, d := range []string{w.spool, w.homes, w.srv} {
		must(t, os.Mkdir(d, 0o755))
	}
	// Debian's /var/mail: root:mail, setgid, group-writable (dot-locks).
	must(t, os.Chown(w.spool, 0, w.mailG))
	must(t, os.Chmod(w.spool, 0o2775|os.ModeSetgid))
	w.runner = w.addUser("r", false)
	uid, gid := w.ids(w.runner)
	must(t, os.Chown(w.srv, uid, gid))
	w.config = filepath.Join(base, "mailmig.toml")
	cfg := fmt.Sprintf(`[old]
inbox = %q
homes = "passwd"
[store]
maildir = %q
sieve_dir = %q
sieve_active = %q
[state]
database = %q
[tls]
cert = %q
key = %q
[submission]
listeners = []
spool = %q
[imap]
listeners = []
[managesieve]
listeners = []
[web]
listeners = []
[lmtp]
socket = ""
[auth]
sources = ["accounts", "crypt"]
[auth.crypt]
file = %q
`, filepath.Join(w.spool, "%u"), filepath.Join(w.srv, "mail/%u/Maildir"), filepath.Join(w.srv, "mail/%u/sieve"),
		filepath.Join(w.srv, "mail/%u/.dovecot.sieve"), filepath.Join(w.srv, "state.db"),
		filepath.Join(base, "tls/cert.pem"), filepath.Join(base, "tls/key.pem"), filepath.Join(w.srv, "outbound"), w.shadowCopy())
	// The users' hashes as chpasswd wrote them to /etc/shadow, copied to a
	// file the runner may read (the crypt password source: the login
	// check before dual delivery).
	must(t, os.WriteFile(w.shadowCopy(), nil, 0o600))
	must(t, os.Chown(w.shadowCopy(), uid, gid))
	must(t, os.WriteFile(w.config, []byte(cfg+extraConfig), 0o644))
	return w
}

// addUser creates the Unix user PREFIX+suffix; with home, a home
// directory of its own, 0700 as UW-IMAP homes often are.
func (w *siteWorld) addUser(suffix string, home bool) string {
	t := w.t
	t.Helper()
	name := w.prefix + suffix
	dir := filepath.Join(w.homes, name)
	out, err := exec.Command("useradd", "-M", "-U", "-d", dir, "-s", "/usr/sbin/nologin", name).CombinedOutput()
	if err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	if home {
		uid, gid := w.ids(name)
		must(t, os.Mkdir(dir, 0o700))
		must(t, os.Chown(dir, uid, gid))
	}
	if w.config != "" {
		w.setPassword(name, "old-password")
	}
	return name
}

func (w *siteWorld) shadowCopy() string { return filepath.Join(w.srv, "shadow") }

// setPassword sets a Unix password with chpasswd and appends the user's
// /etc/shadow line to the world's shadow copy.
func (w *siteWorld) setPassword(name, password string) {
	t := w.t
	t.Helper()
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(name + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd %s: %v\n%s", name, err, out)
	}
	shadow, err := os.ReadFile("/etc/shadow")
	must(t, err)
	for _, line := range strings.Split(string(shadow), "\n") {
		if strings.HasPrefix(line, name+":") {
			f, err := os.OpenFile(w.shadowCopy(), os.O_APPEND|os.O_WRONLY, 0)
			must(t, err)
			fmt.Fprintln(f, line)
			must(t, f.Close())
			return
		}
	}
	t.Fatalf("chpasswd: %s not in /etc/shadow", name)
}

// ids returns a user's uid and primary gid.
func (w *siteWorld) ids(name string) (int, int) {
	u, err := user.Lookup(name)
	if err != nil {
		w.t.Fatalf("lookup %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// writeAs writes a file owned by uid:gid with mode.
func (w *siteWorld) writeAs(path string, data []byte, uid, gid int, mode os.FileMode) {
	w.t.Helper()
	must(w.t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(w.t, os.WriteFile(path, data, mode))
	must(w.t, os.Chown(path, uid, gid))
	must(w.t, os.Chmod(path, mode))
}

// home is a user's home directory.
func (w *siteWorld) home(name string) string { return filepath.Join(w.homes, name) }

// mailmigAs runs the binary as the given user (with extra supplementary
// groups, e.g. "mail") and returns stdout, stderr and the exit code.
// asUser "" runs it as root.
func (w *siteWorld) mailmigAs(asUser string, groups []string, stdin string, args ...string) (string, string, int) {
	w.t.Helper()
	full := append([]string{"--config", w.config}, args...)
	var cmd *exec.Cmd
	if asUser == "" {
		cmd = exec.Command(w.bin, full...)
	} else {
		uid, gid := w.ids(asUser)
		sp := []string{fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", gid)}
		if len(groups) == 0 {
			sp = append(sp, "--clear-groups")
		} else {
			sp = append(sp, "--groups="+strings.Join(groups, ","))
		}
		cmd = exec.Command("setpriv", append(append(sp, w.bin), full...)...)
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start mailmig %v: %v", args, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		w.t.Fatalf("mailmig %v as %q did not finish in 90s\n%s\n%s", args, asUser, out.String(), errb.String())
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// status returns one user's queue entry as `status --json` gives it.
func (w *siteWorld) status(name string) (state, lastError string) {
	w.t.Helper()
	// As the runner: root would leave root-owned SQLite -wal/-shm files.
	out, errs, code := w.mailmigAs(w.runner, nil, "", "status", "--json")
	if code != 0 {
		w.t.Fatalf("status: exit %d\n%s", code, errs)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		w.t.Fatalf("status --json: %v\n%s", err, out)
	}
	for _, u := range st.Users {
		if u.User == name {
			return u.State, u.LastError
		}
	}
	w.t.Fatalf("%s not in the queue:\n%s", name, out)
	return "", ""
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	must(t, err)
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	must(t, out.Close())
}
