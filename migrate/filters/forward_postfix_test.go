package filters

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The judge for .forward: Debian's Postfix as the old MTA (local(8)
// reading the user's ~/.forward, mailbox in a spool directory, forwards
// relayed to a capture SMTP server on loopback) receives the same
// messages as mailmig's delivery with the converted script; each message
// must end in the same places (INBOX, files, forwards, procmail's folders).

// captureSMTP is a minimal SMTP server recording each message's
// recipients, keyed by Message-ID.
type captureSMTP struct {
	ln  net.Listener
	mu  sync.Mutex
	got map[string][]string
}

func newCaptureSMTP(t *testing.T) *captureSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &captureSMTP{ln: ln, got: map[string][]string{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go c.serve(conn)
		}
	}()
	return c
}

func (c *captureSMTP) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	w := func(s string) { fmt.Fprintf(conn, "%s\r\n", s) }
	w("220 capture ESMTP")
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			w("250 capture")
		case strings.HasPrefix(cmd, "MAIL FROM"):
			rcpts = nil
			w("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			a := strings.TrimSpace(line[8:])
			a = strings.Trim(strings.Fields(a)[0], "<>")
			rcpts = append(rcpts, strings.ToLower(a))
			w("250 ok")
		case cmd == "DATA":
			w("354 go on")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.TrimRight(l, "\r\n") == "." {
					break
				}
				data.WriteString(l)
			}
			if m := msgIDRE.FindStringSubmatch(data.String()); m != nil {
				c.mu.Lock()
				c.got[m[1]] = append(c.got[m[1]], rcpts...)
				c.mu.Unlock()
			}
			w("250 queued")
		case cmd == "QUIT":
			w("221 bye")
			return
		default:
			w("250 ok")
		}
	}
}

func TestForwardPostfixJudge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the .forward judge creates a Unix user and runs Postfix: it needs root (make test runs as root)")
	}
	for _, tool := range []string{"postfix", "useradd", "userdel", "procmail"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; run scripts/test-setup (make test does)", tool)
		}
	}
	base, err := os.MkdirTemp("", "mailmig-forward-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	user := fmt.Sprintf("mmfw%d", os.Getpid()%100000)
	home := filepath.Join(base, "home", user)
	if out, err := exec.Command("useradd", "-M", "-d", home, "-s", "/bin/sh", user).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", user).Run() })
	uid, _ := strconv.Atoi(strings.TrimSpace(run(t, "id", "-u", user)))
	gid, _ := strconv.Atoi(strings.TrimSpace(run(t, "id", "-g", user)))
	os.MkdirAll(filepath.Join(home, "mail"), 0o755)
	os.MkdirAll(filepath.Join(base, "home"), 0o755)
	spoolDir := filepath.Join(base, "spool")
	os.MkdirAll(spoolDir, 0o1777)
	os.Chmod(spoolDir, 0o1777)
	spool := filepath.Join(spoolDir, user)

	capSMTP := newCaptureSMTP(t)
	pf := startOldPostfix(t, filepath.Join(base, "postfix"), spoolDir, capSMTP.ln.Addr().String())

	msgs := corpus()[:2] // a personal message and a list message
	for i := range msgs {
		msgs[i].text = strings.Replace(msgs[i].text, "Message-ID: <", fmt.Sprintf("Message-ID: <%d", i), 1)
	}
	cases := []struct{ name, forward string }{
		{"address", "carol@example.net\n"},
		{"address-and-self", "carol@example.net, \\USER\n"},
		{"two-addresses", "carol@example.net\ndave@example.org\n"},
		{"self", "\\USER\n"},
		{"file", "HOME/mail/saved\n"},
		{"file-and-self", "\\USER, HOME/mail/saved\n"},
		{"procmail", "\"|exec /usr/bin/procmail\"\n"},
		{"address-and-procmail", "carol@example.net, \"|exec /usr/bin/procmail\"\n"},
	}
	for n, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A fresh home state per case.
			os.RemoveAll(filepath.Join(home, "mail"))
			os.MkdirAll(filepath.Join(home, "mail"), 0o755)
			os.Remove(spool)
			fwd := strings.NewReplacer("USER", user, "HOME", home).Replace(c.forward)
			os.WriteFile(filepath.Join(home, ".forward"), []byte(fwd), 0o644)
			os.WriteFile(filepath.Join(home, ".procmailrc"), []byte("MAILDIR=$HOME/mail\nDEFAULT="+spool+"\n:0:\n* ^List-Id:.*debian\nlists\n"), 0o644)
			filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error { os.Lchown(p, uid, gid); return nil })

			// Each message gets an id of its own in this case.
			cm := make([]testMsg, len(msgs))
			for i, m := range msgs {
				cm[i] = m
				cm[i].text = strings.Replace(m.text, "Message-ID: <", fmt.Sprintf("Message-ID: <c%d", n), 1)
			}
			for _, m := range cm {
				pf.send(t, m.sender, user+"@example.com", m.text)
			}
			want := map[string]dest{}
			deadline := time.Now().Add(30 * time.Second)
			for {
				want = map[string]dest{}
				done := 0
				for _, m := range cm {
					id := msgIDRE.FindStringSubmatch(m.text)[1]
					if pf.finished(id) {
						done++
					}
				}
				if done == len(cm) && pf.queueEmpty(t) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("postfix did not finish:\n%s", pf.log())
				}
				time.Sleep(200 * time.Millisecond)
			}
			add := func(name string, data []byte) {
				for _, m := range msgIDRE.FindAllStringSubmatch(string(data), -1) {
					want[m[1]] = append(want[m[1]], "folder:"+name)
				}
			}
			if b, err := os.ReadFile(spool); err == nil {
				add("INBOX", b)
			}
			ents, _ := os.ReadDir(filepath.Join(home, "mail"))
			for _, e := range ents {
				if b, err := os.ReadFile(filepath.Join(home, "mail", e.Name())); err == nil && !strings.HasSuffix(e.Name(), ".lock") {
					add(FolderName(e.Name()), b)
				}
			}
			capSMTP.mu.Lock()
			for id, rc := range capSMTP.got {
				for _, a := range rc {
					want[id] = append(want[id], "fwd:"+a)
				}
			}
			capSMTP.got = map[string][]string{}
			capSMTP.mu.Unlock()
			for k := range want {
				sort.Strings(want[k])
			}

			res, err := Convert(Options{User: user, Home: home, Spool: spool, FoldersDir: filepath.Join(home, "mail"), Domain: "example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Problems) > 0 {
				t.Fatalf("problems: %v", res.Problems)
			}
			got := mailmigRun(t, t.TempDir(), res.Script, cm)
			for _, m := range cm {
				id := msgIDRE.FindStringSubmatch(m.text)[1]
				if !slices.Equal(want[id], got[id]) {
					t.Errorf("message %s: postfix %v, mailmig %v\n%s", id, want[id], got[id], numbered(res.Script))
				}
			}
		})
	}
}

func run(t *testing.T, name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out)
}

// oldPostfix is Debian's Postfix configured as the old site's MTA.
type oldPostfix struct {
	dir, etc, port string
}

func startOldPostfix(t *testing.T, dir, spoolDir, relay string) *oldPostfix {
	t.Helper()
	p := &oldPostfix{dir: dir, etc: filepath.Join(dir, "etc")}
	for _, d := range []string{p.etc, filepath.Join(dir, "queue"), filepath.Join(dir, "data")} {
		os.MkdirAll(d, 0o755)
	}
	if pf, err := strconv.Atoi(strings.TrimSpace(run(t, "id", "-u", "postfix"))); err == nil {
		os.Chown(filepath.Join(dir, "data"), pf, -1)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	p.port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.com
mydomain = example.com
myorigin = example.com
mydestination = example.com
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
smtputf8_enable = no
biff = no
mail_spool_directory = %[2]s
mailbox_command =
relayhost = [%[3]s]
smtp_tls_security_level = none
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
`, dir, spoolDir, strings.Replace(relay, "]", "", 1))
	// relayhost wants [host]:port
	host, port, _ := net.SplitHostPort(relay)
	mainCF = strings.Replace(mainCF, "relayhost = ["+relay+"]", "relayhost = ["+host+"]:"+port, 1)
	os.WriteFile(filepath.Join(p.etc, "main.cf"), []byte(mainCF), 0o644)
	master, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		t.Fatal(err)
	}
	chroot := regexp.MustCompile(`(?m)^([a-z0-9.:]+\s+(?:inet|unix|unix-dgram|fifo|pass)\s+[-yn]\s+[-yn]\s+)y`)
	m := chroot.ReplaceAllString(string(master), "${1}n")
	m = regexp.MustCompile(`(?m)^smtp\s+inet`).ReplaceAllString(m, "127.0.0.1:"+p.port+" inet")
	os.WriteFile(filepath.Join(p.etc, "master.cf"), []byte(m), 0o644)
	if out, err := exec.Command("postfix", "-c", p.etc, "check").CombinedOutput(); err != nil {
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	if out, err := exec.Command("postfix", "-c", p.etc, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, p.log())
	}
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+p.port); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen\n%s", p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

func (p *oldPostfix) stop(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(p.dir, "queue", "pid", "master.pid"))
	if err != nil {
		t.Errorf("postfix master.pid: %v", err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *oldPostfix) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// send submits msg over SMTP.
func (p *oldPostfix) send(t *testing.T, from, to, msg string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+p.port, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	expect := func(code string) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("smtp: %v", err)
			}
			if !strings.HasPrefix(l, code) {
				t.Fatalf("smtp: want %s, got %q", code, l)
			}
			if len(l) > 3 && l[3] == ' ' {
				return
			}
		}
	}
	cmd := func(s, code string) { fmt.Fprintf(conn, "%s\r\n", s); expect(code) }
	expect("220")
	cmd("EHLO test.example", "250")
	cmd("MAIL FROM:<"+from+">", "250")
	cmd("RCPT TO:<"+to+">", "250")
	cmd("DATA", "354")
	for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		if strings.HasPrefix(l, ".") {
			l = "." + l
		}
		fmt.Fprintf(conn, "%s\r\n", l)
	}
	cmd(".", "250")
	cmd("QUIT", "221")
}

// finished reports whether the local delivery of the message with id
// ended (sent, forwarded or bounced) according to the log.
func (p *oldPostfix) finished(id string) bool {
	log := p.log()
	qid := regexp.MustCompile(`postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id=<` + regexp.QuoteMeta(id) + `@test>`).FindStringSubmatch(log)
	if qid == nil {
		return false
	}
	return regexp.MustCompile(qid[1] + `: removed`).MatchString(log)
}

func (p *oldPostfix) queueEmpty(t *testing.T) bool {
	out, _ := exec.Command("postqueue", "-c", p.etc, "-p").CombinedOutput()
	return strings.Contains(string(out), "Mail queue is empty")
}
