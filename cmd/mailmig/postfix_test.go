package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmig/mailstore/dovecottest"
	"mailmig/server/tlsconf"
)

// postfixInstance is Debian's Postfix running with a config directory of
// its own on a loopback port, stopped through its master.pid.
type postfixInstance struct {
	t      *testing.T
	dir    string
	etc    string
	port   string
	stdout bytes.Buffer
}

// startPostfix writes main.cf (an instance base plus docs/postfix/main.cf
// as it is) and master.cf (Debian's, without chroot, smtpd on a loopback
// port, plus docs/postfix/master.cf as it is), replacing only the paths
// and the user name the docs' files name, and starts it.
func startPostfix(t *testing.T, w *siteWorld, recipients string) *postfixInstance {
	t.Helper()
	p := newPostfixInstance(t, w.base)
	// The deliver copy as docs/deploying.md installs it: root:mailmig
	// 0750 with CAP_DAC_OVERRIDE and CAP_CHOWN as file capabilities.
	requireTool(t, "setcap")
	deliverBin := filepath.Join(p.dir, "mailmig-deliver")
	copyFile(t, w.bin, deliverBin, 0o750)
	_, rgid := w.ids(w.runner)
	must(t, os.Chown(deliverBin, 0, rgid))
	must(t, os.Chmod(deliverBin, 0o750))
	if out, err := exec.Command("setcap", "cap_dac_override,cap_chown=ep", deliverBin).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v\n%s", err, out)
	}
	subst := strings.NewReplacer("/usr/lib/mailmig/mailmig-deliver", deliverBin, "/etc/mailmig/mailmig.toml", w.config,
		"user=mailmig", "user="+w.runner, "/etc/mailmig/postfix-recipients", recipients)
	docMain, err := os.ReadFile("../../docs/postfix/main.cf")
	must(t, err)
	docMaster, err := os.ReadFile("../../docs/postfix/master.cf")
	must(t, err)
	p.start(p.baseMainCf()+"\n"+subst.Replace(string(docMain)), subst.Replace(string(docMaster)))
	return p
}

// newPostfixInstance makes the directories of a Postfix instance below
// base (etc, queue, and data owned by Debian's postfix user) and picks
// the loopback port of its smtpd.
func newPostfixInstance(t *testing.T, base string) *postfixInstance {
	t.Helper()
	requireTool(t, "postfix")
	p := &postfixInstance{t: t, dir: filepath.Join(base, "postfix")}
	p.etc = filepath.Join(p.dir, "etc")
	for _, d := range []string{p.etc, filepath.Join(p.dir, "queue"), filepath.Join(p.dir, "data")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	pf, err := userIDs("postfix")
	if err != nil {
		t.Fatalf("Debian's postfix user: %v", err)
	}
	must(t, os.Chown(filepath.Join(p.dir, "data"), pf, -1))
	p.port = strconv.Itoa(freePort(t))
	return p
}

// baseMainCf is the main.cf every test instance starts from: its own
// directories, example.org on loopback, no aliases, a relayhost that
// refuses, and retries in seconds so a test sees one.
func (p *postfixInstance) baseMainCf() string {
	return fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = localhost
mydomain = example.org
myorigin = example.org
mydestination = example.org, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
smtputf8_enable = no
relayhost = [127.0.0.1]:9
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
`, p.dir)
}

// start writes mainCf and master.cf (Debian's, without chroot, smtpd on
// the instance's loopback port, masterExtra appended), checks them,
// starts Postfix (stopped at the test's end) and waits for its smtpd.
func (p *postfixInstance) start(mainCf, masterExtra string) {
	t := p.t
	t.Helper()
	must(t, os.WriteFile(filepath.Join(p.etc, "main.cf"), []byte(mainCf), 0o644))
	master, err := os.ReadFile("/etc/postfix/master.cf")
	must(t, err)
	chroot := regexp.MustCompile(`(?m)^([a-z0-9.:]+\s+(?:inet|unix|unix-dgram|fifo|pass)\s+[-yn]\s+[-yn]\s+)y`)
	m := chroot.ReplaceAllString(string(master), "${1}n")
	m = regexp.MustCompile(`(?m)^smtp\s+inet`).ReplaceAllString(m, "127.0.0.1:"+p.port+" inet")
	must(t, os.WriteFile(filepath.Join(p.etc, "master.cf"), []byte(m+"\n"+masterExtra), 0o644))
	if out, err := exec.Command("postfix", "-c", p.etc, "check").CombinedOutput(); err != nil {
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	if out, err := exec.Command("postfix", "-c", p.etc, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, p.log())
	}
	t.Cleanup(p.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+p.port); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen on %s\n%s", p.port, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the master process named in its PID file and waits for it.
func (p *postfixInstance) stop() {
	b, err := os.ReadFile(filepath.Join(p.dir, "queue", "pid", "master.pid"))
	if err != nil {
		p.t.Errorf("postfix master.pid: %v", err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		p.t.Errorf("postfix master.pid %q: %v", b, err)
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Errorf("postfix master %d still runs 10s after SIGTERM", pid)
}

func (p *postfixInstance) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// waitLog waits for a maillog line matching re.
func (p *postfixInstance) waitLog(re string) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := rx.FindString(p.log()); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no maillog line matching %q:\n%s", re, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func userIDs(name string) (int, error) {
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// waitStore waits until a message in the user's new INBOX contains every
// one of wants and returns it.
func (w *siteWorld) waitStore(user string, wants ...string) string {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, sub := range []string{"new", "cur"} {
			files, _ := filepath.Glob(filepath.Join(w.srv, "mail", user, "Maildir", sub, "*"))
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				ok := true
				for _, want := range wants {
					ok = ok && bytes.Contains(b, []byte(want))
				}
				if ok {
					return string(b)
				}
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no message with %q in %s's new INBOX", wants, user)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPostfixPipe is issue 9 item 4 on a real Postfix: Debian's postfix
// with its own configuration directory on a loopback port pipes every
// local recipient through `mailmig deliver` exactly as docs/postfix/main.cf
// and master.cf say (those files, appended as they are), running deliver
// as the runner's user with group mail and no readable TLS key. Shown:
// a normal message, first.last@ and postmaster@ through mailmig's alias
// file, a confirmation reply with its +TOKEN reaching the runner, a
// message over mailmig's size limit bounced by Postfix with deliver's
// reason, and a temporary failure that Postfix retries. doveadm reads the
// result. A spool deliver creates belongs to the user, group mail, 0600.
func TestPostfixPipe(t *testing.T) {
	requireTool(t, "swaks")
	w := newSiteWorld(t, `[server]
hostname = "localhost"
domains = ["example.org"]
[limits]
message_size = "200KB"
[aliases]
file = "ALIASES"
`)
	aliasFile := filepath.Join(w.base, "aliases")
	cfg, _ := os.ReadFile(w.config)
	must(t, os.WriteFile(w.config, bytes.Replace(cfg, []byte("ALIASES"), []byte(aliasFile), 1), 0o644))
	done := w.addUser("d", true)
	confirm := w.addUser("c", true)
	queued := w.addUser("q", true)
	oldOnly := w.addUser("o", true)
	must(t, os.WriteFile(aliasFile, []byte("postmaster: "+done+"\nfirst.last: "+done+"\n"), 0o644))
	// The TLS key is root's alone: deliver must not need it.
	must(t, tlsconf.EnsureSelfSigned(filepath.Join(w.base, "tls/cert.pem"), filepath.Join(w.base, "tls/key.pem"), "localhost"))
	must(t, os.Chmod(filepath.Join(w.base, "tls/key.pem"), 0o600))
	for _, u := range []string{done, confirm, oldOnly} {
		uid, _ := w.ids(u)
		w.writeAs(filepath.Join(w.spool, u), []byte(siteMbox), uid, w.mailG, 0o600)
	}

	// The runner, with the privileges docs/deploying.md gives it, takes
	// both users to confirm, and done (stop) to done.
	mail := []string{"mail"}
	caps := "+dac_override,+dac_read_search"
	if out, errs, code := w.mailmigAs(w.runner, mail, "", "enqueue", done, confirm, queued); code != 0 {
		t.Fatalf("enqueue: %d\n%s%s", code, out, errs)
	}
	w.capsRun(caps, "run", "--once", "--no-progress")
	if out, errs, code := w.mailmigAs(w.runner, mail, "", "stop", done); code != 0 {
		t.Fatalf("stop: %d\n%s%s", code, out, errs)
	}
	w.capsRun(caps, "run", "--once", "--no-progress")
	if st, why := w.status(done); st != "done" {
		t.Fatalf("%s: %s (%s)", done, st, why)
	}
	if st, why := w.status(confirm); st != "confirm" {
		t.Fatalf("%s: %s (%s)", confirm, st, why)
	}
	confirmation := w.waitStore(confirm, "mailmig-confirm+")
	token := regexp.MustCompile(`mailmig-confirm\+[A-Za-z0-9_-]+@example\.org`).FindString(confirmation)
	if token == "" {
		t.Fatalf("no reply address in the confirmation:\n%s", confirmation)
	}

	recipients := filepath.Join(w.base, "postfix-recipients")
	out, errs, code := w.mailmigAs(w.runner, nil, "", "alias", "list", "--postfix")
	if code != 0 {
		t.Fatalf("alias list --postfix: %d\n%s", code, errs)
	}
	must(t, os.WriteFile(recipients, []byte(out), 0o644))
	pf := startPostfix(t, w, recipients)
	smtp := "127.0.0.1:" + pf.port
	send := func(from, to, subject string, extra ...string) {
		t.Helper()
		args := append([]string{"--from", from, "--to", to, "--header", "Subject: " + subject}, extra...)
		if out, code := swaks(t, smtp, args...); code != 0 {
			t.Fatalf("swaks to %s: exit %d\n%s", to, code, out)
		}
	}
	send("outside@example.net", done+"@example.org", "normal message")
	send("outside@example.net", "first.last@example.org", "to first.last")
	send("outside@example.net", "postmaster@example.org", "to postmaster")
	w.waitStore(done, "Subject: normal message", "Delivered-To: "+done+"@example.org")
	w.waitStore(done, "Subject: to first.last")
	w.waitStore(done, "Subject: to postmaster")

	// The user's reply: Postfix accepts mailmig-confirm+TOKEN, the pipe
	// passes ${recipient} with the token, the runner's control address
	// stops the old delivery.
	send(confirm+"@example.org", token, "Re: your mailbox has moved")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, _ := w.mailmigAs(w.runner, nil, "", "status", "--json")
		if strings.Contains(out, `"user": "`+confirm+`"`) && regexp.MustCompile(`"user": "`+confirm+`"[^}]*"stop_requested": true`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			ev, _, _ := w.mailmigAs(w.runner, nil, "", "events", confirm)
			t.Fatalf("the reply did not reach the runner:\n%s\n%s", ev, pf.log())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The dual window: the confirm user's mail goes to the old spool
	// (appended under its locks, owner and mode kept) and the new store;
	// a user not in the queue keeps getting mail in the old spool only;
	// a queued user without a spool gets one made as local(8) makes it.
	send("outside@example.net", confirm+"@example.org", "during the dual window")
	w.waitStore(confirm, "Subject: during the dual window")
	send("outside@example.net", oldOnly+"@example.org", "still on the old host")
	send("outside@example.net", queued+"@example.org", "first mail ever")
	for _, c := range []struct{ user, subject string }{{confirm, "during the dual window"}, {oldOnly, "still on the old host"}, {queued, "first mail ever"}} {
		path := filepath.Join(w.spool, c.user)
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte("Subject: "+c.subject)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q not in %s:\n%s", c.subject, path, pf.log())
			}
			time.Sleep(100 * time.Millisecond)
		}
		var st syscall.Stat_t
		must(t, syscall.Stat(path, &st))
		uid, _ := w.ids(c.user)
		if int(st.Uid) != uid || int(st.Gid) != w.mailG || st.Mode&0o7777 != 0o600 {
			t.Errorf("spool of %s is %d:%d %o after delivery, want %d:%d 600", c.user, st.Uid, st.Gid, st.Mode&0o7777, uid, w.mailG)
		}
		// The dot-lock goes once deliver is done with both sides.
		for i := 0; ; i++ {
			if _, err := os.Stat(path + ".lock"); err != nil {
				break
			}
			if i == 100 {
				t.Errorf("%s.lock left behind", path)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n := countFiles(t, filepath.Join(w.srv, "mail", oldOnly)); n != 0 {
		t.Errorf("a user not in the queue got a new store")
	}

	// Over mailmig's limit (200 KB; Postfix's own is 10 MB): deliver
	// refuses with 65, Postfix bounces to the sender with the reason.
	big := filepath.Join(w.base, "big.txt")
	must(t, os.WriteFile(big, []byte(strings.Repeat("0123456789abcdef 0123456789abcdef 0123456789abcdef\n", 5000)), 0o644))
	send(done+"@example.org", done+"@example.org", "too big", "--body", "@"+big)
	t.Log(pf.waitLog(`status=bounced .*too big.*`))
	w.waitStore(done, "Undelivered Mail Returned to Sender", "too big")

	// A temporary failure: the mailbox is full and limits.quota_temporary
	// says so with 75; Postfix defers, and delivers on its retry once the
	// postmaster raised the quota.
	store := filepath.Join(w.srv, "mail", done, "Maildir")
	orig, err := os.ReadFile(w.config)
	must(t, err)
	must(t, os.WriteFile(w.config, bytes.Replace(orig, []byte("[limits]\n"), []byte("[limits]\nquota = \"1KB\"\nquota_temporary = true\n"), 1), 0o644))
	send("outside@example.net", done+"@example.org", "retried later")
	t.Log(pf.waitLog(`status=deferred.*`))
	must(t, os.WriteFile(w.config, orig, 0o644))
	w.waitStore(done, "Subject: retried later")

	// Without the capabilities (the plain binary as the mailmig user) a
	// missing spool is not made someone else's: nothing is created and
	// the MTA keeps the message (75).
	queued2 := w.addUser("p", true)
	if out, errs, code := w.mailmigAs(w.runner, mail, "", "enqueue", queued2); code != 0 {
		t.Fatalf("enqueue: %d\n%s%s", code, out, errs)
	}
	if _, errs, code := w.mailmigAs(w.runner, mail, "Subject: x\n\nx\n", "deliver", "-f", "a@example.net", queued2); code != 75 {
		t.Errorf("deliver without capabilities for a missing spool: exit %d, want 75\n%s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(w.spool, queued2)); err == nil {
		t.Errorf("deliver without capabilities left a spool behind")
	}
	var st syscall.Stat_t
	// The done user's spool was never touched by the pipe.
	ud, _ := w.ids(done)
	must(t, syscall.Stat(filepath.Join(w.spool, done), &st))
	if int(st.Uid) != ud || int(st.Gid) != w.mailG || st.Mode&0o7777 != 0o600 {
		t.Errorf("old spool of %s is now %d:%d %o", done, st.Uid, st.Gid, st.Mode&0o7777)
	}

	// doveadm reads the done user's store: every message delivered
	// through Postfix is there once.
	pf.stop()
	d := dovecottest.New(t, store)
	subjects, err := d.Run("fetch", "hdr.subject", "mailbox", "INBOX", "ALL")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"normal message", "to first.last", "to postmaster", "retried later", "Undelivered Mail Returned to Sender"} {
		if n := strings.Count(string(subjects), s); n != 1 {
			t.Errorf("doveadm sees %q %d times in INBOX:\n%s", s, n, subjects)
		}
	}
}

// capsRun runs the binary as the runner with the ambient capabilities
// caps and group mail, and fails the test on a non-zero exit.
func (w *siteWorld) capsRun(caps string, args ...string) {
	w.t.Helper()
	uid, gid := w.ids(w.runner)
	sp := []string{"--inh-caps=" + caps, "--ambient-caps=" + caps,
		"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--groups=mail", w.bin, "--config", w.config}
	cmd := exec.Command("setpriv", append(sp, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("mailmig %v as the runner: %v\n%s", args, err, out)
	}
}
