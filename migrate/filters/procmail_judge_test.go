package filters

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/server/sieve"
	"mailmig/server/sieve/pigeonholetest"
)

// The judge: each testdata/rc/*.rc runs under Debian's procmail over the
// same messages as the converted script under mailmig's delivery (the
// real Sieve engine), and every message must end in the same folders
// (procmail's folder file → the name the copy gives it), be forwarded to
// the same addresses and answered by the same vacation replies. Then
// pigeonhole's sievec compiles the script.

// testMsg is a message of the judge's corpus.
type testMsg struct {
	sender string // envelope sender ("" = null sender)
	text   string // header and body, LF line ends
}

func corpus() []testMsg {
	mk := func(sender, id string, hdr []string, body string) testMsg {
		h := strings.Join(hdr, "\n")
		if !strings.Contains(strings.ToLower(h), "\nto:") && !strings.HasPrefix(strings.ToLower(h), "to:") {
			h += "\nTo: Alice <alice@example.com>"
		}
		return testMsg{sender, fmt.Sprintf("%s\nMessage-ID: <%s@test>\nDate: Sun, 06 Dec 2026 10:00:00 +0000\n\n%s", h, id, body)}
	}
	big := strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit\n", 2500) // ~140 kB
	return []testMsg{
		mk("bob@example.org", "plain", []string{"From: Bob <bob@example.org>", "Subject: lunch?"}, "See you at noon.\n"),
		mk("debian-user-bounces@lists.debian.org", "debian", []string{"From: Carol <carol@example.net>", "To: debian-user@lists.debian.org", "Subject: apt question", "List-Id: <debian-user.lists.debian.org>", "Precedence: list"}, "How do I pin a package?\n"),
		mk("owner-linux-kernel@vger.kernel.org", "lkml", []string{"From: Dan <dan@example.net>", "To: linux-kernel@vger.kernel.org", "Cc: Alice <alice@example.com>", "Subject: [PATCH] fix", "List-Id: <linux-kernel.vger.kernel.org>", "X-Mailing-List: linux-kernel@vger.kernel.org"}, "patch\n"),
		mk("spammer@spam.example", "spam5", []string{"From: Winner <spammer@spam.example>", "Subject: You won", "X-Spam-Status: Yes, score=9.1 required=5.0", "X-Spam-Level: *********"}, "Claim your VIAGRA prize now\n"),
		mk("maybe@spam.example", "spam2", []string{"From: Offers <maybe@spam.example>", "Subject: offer", "X-Spam-Status: No, score=2.1 required=5.0", "X-Spam-Level: **"}, "An offer.\n"),
		mk("", "bounce", []string{"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>", "Subject: Undelivered Mail Returned to Sender", "Auto-Submitted: auto-replied"}, "The mail could not be delivered.\n"),
		mk("mom@family.example", "mom", []string{"From: Mom <mom@family.example>", "Subject: Sunday dinner"}, "Are you coming?\n"),
		mk("boss@work.example", "boss", []string{"From: The Boss <boss@work.example>", "Subject: URGENT: report due", "X-Priority: 1"}, "Need the report today.\n"),
		mk("news@shop.example", "bulk", []string{"From: Shop <news@shop.example>", "Subject: Weekly deals", "Precedence: bulk"}, "Deals!\n"),
		mk("bob@example.org", "big", []string{"From: Bob <bob@example.org>", "Subject: photos"}, big),
		mk("eve@example.net", "cc", []string{"From: Eve <eve@example.net>", "To: team@example.com", "Cc: alice@example.com", "Subject: meeting notes"}, "Notes from today's meeting: the cake was great.\n"),
		mk("cron@host.example.com", "cron", []string{"From: root@host.example.com (Cron Daemon)", "Subject: Cron <root@host> run-parts /etc/cron.daily", "To: root@host.example.com"}, "output\n"),
		mk("friend@example.org", "folded", []string{"From: Friend <friend@example.org>", "Subject: a rather long subject line that was folded\n\tonto the next line about sailing"}, "Let's go sailing.\n"),
		mk("alerts@monitor.example", "alert", []string{"From: Monitor <alerts@monitor.example>", "Subject: [ALERT] disk full", "X-Loop: alice@example.com"}, "disk /var is full\n"),
	}
}

// dest is where one message went, sorted: "folder:NAME", "fwd:ADDR",
// "vacation:ADDR".
type dest []string

var msgIDRE = regexp.MustCompile(`(?mi)^Message-ID:\s*<([^@>]+)@test>`)

// procmailRun delivers msgs with real procmail and reports, per message
// id, where it went.
func procmailRun(home, spool string, msgs []testMsg) (map[string]dest, error) {
	capDir := filepath.Join(filepath.Dir(home), "sent")
	os.MkdirAll(capDir, 0o700)
	capture := filepath.Join(filepath.Dir(home), "sendmail")
	script := "#!/bin/sh\nf=$(mktemp " + capDir + "/m.XXXXXXXX)\nprintf '%s\\n' \"$*\" > \"$f\"\ncat >> \"$f\"\n"
	if err := os.WriteFile(capture, []byte(script), 0o755); err != nil {
		return nil, err
	}
	out := map[string]dest{}
	for _, m := range msgs {
		id := msgIDRE.FindStringSubmatch(m.text)[1]
		from := m.sender
		if from == "" {
			from = "MAILER-DAEMON"
		}
		in := "From " + from + "  Sun Dec  6 10:00:01 2026\n" + m.text
		cmd := exec.Command("procmail", "HOME="+home, "MAILDIR="+home, "LOGNAME=alice", "ORGMAIL="+spool, "DEFAULT="+spool,
			"SENDMAIL="+capture, "COMSAT=no", filepath.Join(home, ".procmailrc"))
		cmd.Dir = home
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "LOGNAME=alice"}
		cmd.Stdin = strings.NewReader(in)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("procmail on %s: %v\n%s", id, err, b)
		}
		ents, _ := os.ReadDir(capDir)
		for _, e := range ents {
			p := filepath.Join(capDir, e.Name())
			b, _ := os.ReadFile(p)
			os.Remove(p)
			args, rest, _ := strings.Cut(string(b), "\n")
			if strings.Contains(" "+args+" ", " -t ") && !strings.Contains(rest, "Message-ID: <") {
				to := regexp.MustCompile(`(?mi)^To:\s*(.*)$`).FindStringSubmatch(rest)
				addr := ""
				if to != nil {
					addr = strings.Trim(strings.TrimSpace(to[1]), "<>")
					if i := strings.LastIndex(addr, "<"); i >= 0 {
						addr = strings.Trim(addr[i:], "<>")
					}
				}
				out[id] = append(out[id], "vacation:"+strings.ToLower(addr))
				continue
			}
			for _, a := range strings.Fields(args) {
				if !strings.HasPrefix(a, "-") {
					out[id] = append(out[id], "fwd:"+strings.ToLower(a))
				}
			}
		}
	}
	// Where the messages are now.
	add := func(name string, data []byte) {
		for _, m := range msgIDRE.FindAllStringSubmatch(string(data), -1) {
			out[m[1]] = append(out[m[1]], "folder:"+name)
		}
	}
	if b, err := os.ReadFile(spool); err == nil {
		add("INBOX", b)
	}
	maildir := filepath.Join(home, "mail")
	filepath.Walk(home, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(maildir, p)
		if strings.HasPrefix(rel, "..") {
			rel, _ = filepath.Rel(home, p)
		}
		if fi.IsDir() {
			if isDir(filepath.Join(p, "new")) && isDir(filepath.Join(p, "cur")) {
				for _, sub := range []string{"new", "cur"} {
					ents, _ := os.ReadDir(filepath.Join(p, sub))
					for _, e := range ents {
						b, _ := os.ReadFile(filepath.Join(p, sub, e.Name()))
						add(FolderName(rel), b)
					}
				}
				return filepath.SkipDir
			}
			return nil
		}
		base := filepath.Base(p)
		if strings.HasPrefix(base, ".") || strings.HasSuffix(base, ".lock") || strings.HasSuffix(base, ".rc") || strings.HasSuffix(base, ".msg") || strings.HasSuffix(base, ".cache") {
			return nil
		}
		b, _ := os.ReadFile(p)
		mh := strings.Trim(base, "0123456789") == "" || strings.HasPrefix(base, "msg.")
		if strings.HasPrefix(string(b), "From ") && !mh {
			add(FolderName(rel), b)
			return nil
		}
		// MH folder message or procmail's msg.XXXX directory file.
		if msgIDRE.Match(b) {
			dir, _ := filepath.Rel(maildir, filepath.Dir(p))
			if strings.HasPrefix(dir, "..") {
				dir, _ = filepath.Rel(home, filepath.Dir(p))
			}
			add(FolderName(dir), b)
		}
		return nil
	})
	for k := range out {
		sort.Strings(out[k])
	}
	return out, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

type recSender struct {
	mu  sync.Mutex
	got []struct {
		from string
		to   []string
		msg  string
	}
}

func (r *recSender) Send(_ context.Context, from string, to []string, msg io.Reader) error {
	b, _ := io.ReadAll(msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, struct {
		from string
		to   []string
		msg  string
	}{from, to, string(b)})
	return nil
}

type sentMsg struct {
	from string
	to   []string
	msg  string
}

// mailmigRunSender delivers msgs through mailmig's delivery with script
// as the user's active Sieve script and returns, per message id, where
// copies were stored ("folder:NAME") and what was sent.
func mailmigRunSender(t *testing.T, root, script string, msgs []testMsg) map[string][]sentMsg {
	_, sends := mailmigDeliver(t, root, script, msgs)
	return sends
}

// mailmigRun is mailmigRunSender's result as destinations.
func mailmigRun(t *testing.T, root, script string, msgs []testMsg) map[string]dest {
	out, sends := mailmigDeliver(t, root, script, msgs)
	for id, ss := range sends {
		for _, s := range ss {
			if s.from == "" && !strings.Contains(s.msg, "Message-ID: <"+id+"@test>") {
				for _, a := range s.to {
					out[id] = append(out[id], "vacation:"+strings.ToLower(a))
				}
				continue
			}
			for _, a := range s.to {
				out[id] = append(out[id], "fwd:"+strings.ToLower(a))
			}
		}
		sort.Strings(out[id])
	}
	return out
}

func mailmigDeliver(t *testing.T, root, script string, msgs []testMsg) (map[string]dest, map[string][]sentMsg) {
	t.Helper()
	st := &sieve.Storage{Dir: filepath.Join(root, "sieve"), ActiveLink: filepath.Join(root, ".dovecot.sieve")}
	if err := st.Put("migrated", []byte(script)); err != nil {
		t.Fatalf("the converted script does not compile in mailmig: %v\n%s", err, script)
	}
	if err := st.SetActive("migrated"); err != nil {
		t.Fatal(err)
	}
	snd := &recSender{}
	d := &delivery.Deliverer{
		MaildirFor:   func(string) (string, error) { return filepath.Join(root, "Maildir"), nil },
		ScriptsFor:   func(string) (*sieve.Storage, error) { return st, nil },
		UserExists:   func(u string) (bool, error) { return u == "alice", nil },
		GlobalScript: "keep;",
		// The test rcfiles file spam into ~/mail/spam: that is the site's
		// spam folder here (fileinto "spam"/"junk" both reach it).
		SpamFolder: "spam",
		Sender:     snd,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hostname:   "mx.example.com",
		NoFsync:    true,
		Now:        func() time.Time { return time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC) },
	}
	out := map[string]dest{}
	sends := map[string][]sentMsg{}
	for _, m := range msgs {
		id := msgIDRE.FindStringSubmatch(m.text)[1]
		n := len(snd.got)
		res, err := d.Deliver(context.Background(), delivery.Envelope{From: m.sender, To: "alice@example.com", User: "alice"},
			msgspool.Bytes([]byte(strings.ReplaceAll(m.text, "\n", "\r\n"))))
		if err != nil {
			t.Fatalf("deliver %s: %v", id, err)
		}
		if res.ScriptErr != nil {
			t.Errorf("deliver %s: script error %v", id, res.ScriptErr)
		}
		for _, s := range res.Stored {
			out[id] = append(out[id], "folder:"+s.Folder)
		}
		for _, s := range snd.got[n:] {
			sends[id] = append(sends[id], sentMsg{s.from, s.to, s.msg})
		}
		sort.Strings(out[id])
	}
	return out, sends
}

// sievec compiles scripts (name → text) with pigeonhole in one run,
// with a global "spam" script for include :global and editheader
// enabled (mailmig's server has it).
func sievec(t *testing.T, scripts map[string]string) {
	t.Helper()
	dir := pigeonholetest.Dir(t)
	global := filepath.Join(dir, "global")
	os.MkdirAll(global, 0o755)
	os.WriteFile(filepath.Join(global, "spam.sieve"), []byte("require \"fileinto\";\nif header :contains \"X-Spam-Level\" \"*****\" { fileinto \"Junk\"; stop; }\n"), 0o644)
	f, _ := os.OpenFile(filepath.Join(dir, "dovecot.conf"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "plugin {\n  sieve_global = %s\n  sieve_extensions = +editheader\n}\n", global)
	f.Close()
	sdir := filepath.Join(dir, "scripts")
	os.MkdirAll(sdir, 0o777)
	os.Chmod(sdir, 0o777)
	for name, text := range scripts {
		os.WriteFile(filepath.Join(sdir, name+".sieve"), []byte(text), 0o644)
	}
	out, err := pigeonholetest.Command(t, dir, "sievec", sdir).CombinedOutput()
	for name, text := range scripts {
		if _, serr := os.Stat(filepath.Join(sdir, name+".svbin")); serr != nil {
			t.Errorf("sievec refuses the script of %s: %v\n%s\n%s", name, err, out, numbered(text))
		}
	}
	if err != nil && !t.Failed() {
		t.Errorf("sievec: %v\n%s", err, out)
	}
}

func numbered(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		fmt.Fprintf(&b, "%3d %s\n", n, sc.Text())
	}
	return b.String()
}

// setupHome makes a home for one rc case: HOME/.procmailrc, the case's
// extra files (testdata/rc/NAME.files/...), HOME/mail with a few
// directories (procmail does not create the directories of mbox files).
func setupHome(t *testing.T, rcPath string) (home, spool string) {
	t.Helper()
	root := t.TempDir()
	os.Chmod(root, 0o755)
	home = filepath.Join(root, "home", "alice")
	spool = filepath.Join(root, "spool", "alice")
	for _, d := range []string{"mail/lists", "mail/archive", "mail/work", "mail/family", "Mail"} {
		os.MkdirAll(filepath.Join(home, d), 0o755)
	}
	os.MkdirAll(filepath.Dir(spool), 0o755)
	b, err := os.ReadFile(rcPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, ".procmailrc"), b, 0o644)
	extra := strings.TrimSuffix(rcPath, ".rc") + ".files"
	filepath.Walk(extra, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(extra, p)
		dst := filepath.Join(home, rel)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		data, _ := os.ReadFile(p)
		os.WriteFile(dst, data, 0o644)
		return nil
	})
	return home, spool
}

// expectProblems lists the cases whose rules are expected to be reported
// as not converted (their messages then are judged only where the
// converted part decides).
func TestProcmailJudge(t *testing.T) {
	cases, _ := filepath.Glob("testdata/rc/*.rc")
	if len(cases) < 40 {
		t.Fatalf("only %d procmailrc cases", len(cases))
	}
	msgs := corpus()
	if _, err := exec.LookPath("procmail"); err != nil {
		t.Fatal("procmail is not installed; run scripts/test-setup (make test does) to install it")
	}
	// procmail sleeps a second after creating a folder file (for biff's
	// atime test): the cases' procmail runs go in parallel (they wait,
	// they do not compute), each case's messages in order.
	type run struct {
		home, spool string
		want        map[string]dest
		err         error
	}
	runs := make([]run, len(cases))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 24)
	for i, rc := range cases {
		runs[i].home, runs[i].spool = setupHome(t, rc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			runs[i].want, runs[i].err = procmailRun(runs[i].home, runs[i].spool, msgs)
		}()
	}
	wg.Wait()
	compiled := map[string]string{}
	for i, rc := range cases {
		name := strings.TrimSuffix(filepath.Base(rc), ".rc")
		t.Run(name, func(t *testing.T) {
			home, spool := runs[i].home, runs[i].spool
			if runs[i].err != nil {
				t.Fatal(runs[i].err)
			}
			src, _ := os.ReadFile(rc)
			res, err := Convert(Options{User: "alice", Home: home, Spool: spool, FoldersDir: filepath.Join(home, "mail"),
				Domain: "example.com", Addresses: []string{"alice@example.com"}, ProcmailAlways: true})
			if err != nil {
				t.Fatal(err)
			}
			wantProblems := strings.Contains(string(src), "# expect: not converted")
			if wantProblems != (len(res.Problems) > 0) {
				t.Errorf("problems = %v, want problems: %v\n%s", res.Problems, wantProblems, numbered(res.Script))
			}
			for _, p := range res.Problems {
				if !strings.Contains(res.Script, fmt.Sprintf("line %d", p.Line)) {
					t.Errorf("problem %v is not in the script as a comment", p)
				}
			}
			want := runs[i].want
			got := mailmigRun(t, filepath.Join(filepath.Dir(spool), "new"), res.Script, msgs)
			for _, m := range msgs {
				id := msgIDRE.FindStringSubmatch(m.text)[1]
				if wantProblems && judgeExcept(string(src), id) {
					continue
				}
				if !slices.Equal(want[id], got[id]) {
					t.Errorf("message %s: procmail %v, mailmig %v", id, want[id], got[id])
				}
			}
			if t.Failed() {
				t.Logf("script:\n%s", numbered(res.Script))
			}
			// With the site's spam rule included, pigeonhole compiles it.
			res2, err := Convert(Options{User: "alice", Home: home, Spool: spool, FoldersDir: filepath.Join(home, "mail"),
				Domain: "example.com", Addresses: []string{"alice@example.com"}, ProcmailAlways: true, GlobalInclude: "spam"})
			if err != nil {
				t.Fatal(err)
			}
			compiled[name] = res2.Script
			// And through mailmig with the site's spam rule included: the
			// spam message is in the spam folder, the others go where
			// procmail put them.
			got2 := mailmigRun(t, filepath.Join(filepath.Dir(spool), "new2"), res2.Script, msgs)
			for _, m := range msgs {
				id := msgIDRE.FindStringSubmatch(m.text)[1]
				if id == "spam5" {
					if !slices.Contains(got2[id], "folder:spam") {
						t.Errorf("with include :global \"spam\", the spam message went to %v", got2[id])
					}
					continue
				}
				if !(wantProblems && judgeExcept(string(src), id)) && !slices.Equal(want[id], got2[id]) {
					t.Errorf("with include :global \"spam\", message %s: procmail %v, mailmig %v", id, want[id], got2[id])
				}
			}
		})
	}
	sievec(t, compiled)
}

// judgeExcept reports whether an rcfile with a rule that is not converted
// names id on its "# judge-except:" line (the messages that rule decides;
// all others must still go where procmail put them). Without the line no
// message is judged.
func judgeExcept(src, id string) bool {
	for _, l := range strings.Split(src, "\n") {
		if rest, ok := strings.CutPrefix(l, "# judge-except:"); ok {
			return slices.Contains(strings.Fields(rest), id)
		}
	}
	return true
}
