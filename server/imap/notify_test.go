package imap

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The two-session NOTIFY cases (RFC 5465): each file in testdata/notify
// has lines "A CMD" or "B CMD", run by session A or B of the same user,
// and "A wait", which collects what A is sent unasked within a second.
// The same script runs against Debian's dovecot imap (two processes on
// one Maildir) and against mailmig; each step's responses (as a set)
// must agree.

// notifyPeer is one session: lines arrive on a channel from a reader.
type notifyPeer struct {
	w     io.Writer
	lines chan string
	n     int
}

func newNotifyPeer(w io.Writer, r *bufio.Reader) *notifyPeer {
	p := &notifyPeer{w: w, lines: make(chan string, 1000)}
	go func() {
		defer close(p.lines)
		for {
			l, err := readResponse(r)
			if l != "" {
				p.lines <- l
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

// do sends cmd and returns the responses up to its tagged one; IDLE
// returns at the continuation, DONE at IDLE's tagged response.
func (p *notifyPeer) do(cmd string) ([]string, error) {
	tag := fmt.Sprintf("n%d ", p.n)
	if cmd == "DONE" {
		fmt.Fprintf(p.w, "DONE\r\n")
	} else {
		p.n++
		tag = fmt.Sprintf("n%d ", p.n)
		fmt.Fprintf(p.w, "%s%s\r\n", tag, cmd)
	}
	if cmd == "IDLE" {
		tag = "+"
	}
	var out []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return out, fmt.Errorf("connection closed during %q: %q", cmd, out)
			}
			out = append(out, l)
			if strings.HasPrefix(l, tag) {
				return out, nil
			}
		case <-timeout:
			return out, fmt.Errorf("no reply to %q: %q", cmd, out)
		}
	}
}

// wait returns what arrives unasked: everything until quiet has passed
// without a line once something came, or most if nothing does; never
// less than least.
func (p *notifyPeer) wait(least, most, quiet time.Duration) []string {
	var out []string
	start := time.Now()
	deadline := time.NewTimer(most)
	defer deadline.Stop()
	var lull <-chan time.Time
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return out
			}
			out = append(out, l)
			lull = time.After(max(quiet, least-time.Since(start)))
		case <-lull:
			return out
		case <-deadline.C:
			if lull == nil {
				return out
			}
		}
	}
}

// normNotify makes one step's responses comparable: tags and free text
// of tagged lines go, literals are quoted, values normalised as in the
// single-session harness, and the untagged ones are sorted.
func normNotify(resp []string) []string {
	var out, tagged []string
	for _, r := range resp {
		l := quoteLiterals(r)
		if strings.HasPrefix(l, "* ") || strings.HasPrefix(l, "+ ") {
			if strings.HasPrefix(l, "* OK [HIGHESTMODSEQ ") || strings.HasPrefix(l, "* OK [MAILBOXID ") {
				// Sent by mailmig on every SELECT (RFC 7162 §3.1.2.1),
				// by dovecot only after CONDSTORE; MAILBOXID (RFC 8474)
				// not by dovecot 2.3. See splitByTag.
				continue
			}
			out = append(out, notifyValidityRE.ReplaceAllString(normMetadata(normValues(normFetch(normAttrs(l)))), "$1 V"))
			continue
		}
		f := strings.SplitN(l, " ", 3)
		if len(f) > 2 {
			f[2] = strings.TrimPrefix(mailboxIDCodeRE.ReplaceAllString(f[1]+" "+f[2], "$1"), f[1]+" ")
		}
		st := f[1]
		if len(f) > 2 && strings.HasPrefix(f[2], "[") {
			if i := strings.IndexByte(f[2], ']'); i > 0 {
				st += " " + f[2][:i+1]
			}
		}
		tagged = append(tagged, notifyValidityRE.ReplaceAllString(st, "$1 V"))
	}
	slices.Sort(out)
	return append(out, tagged...)
}

// notifyValidityRE finds UIDVALIDITY values (they are times of creation).
var notifyValidityRE = regexp.MustCompile(`(APPENDUID|UIDVALIDITY|COPYUID) \d+`)

// notifyTiming bounds "A wait": how long it lasts at least, at most
// when nothing comes, and the lull after a line that ends it.
type notifyTiming struct{ least, most, quiet time.Duration }

// dovecot re-arms its watch of the selected mailbox a second after a
// command or a notification and then checks every second
// (mailbox_idle_check_interval); a change made before the watch is back
// waits for the next one. Its Maildir sync also compares directory times
// by the second. So a wait on dovecot lasts at least 1.1 s and until
// 1.2 s passed without a line; mailmig (PollInterval 100 ms) is quicker.
// The upper bounds leave room for a loaded machine; mailmig's costs no
// time, as its script runs beside dovecot's.
var (
	notifyDovecot = notifyTiming{least: 1100 * time.Millisecond, most: 4 * time.Second, quiet: 1200 * time.Millisecond}
	notifyMailmig = notifyTiming{most: 3 * time.Second, quiet: 500 * time.Millisecond}
)

func runNotifyScript(steps []string, a, b *notifyPeer, tm notifyTiming, maildir string) ([][]string, error) {
	var out [][]string
	for _, s := range steps {
		who, cmd, _ := strings.Cut(s, " ")
		p := a
		if who == "B" {
			p = b
		}
		var resp []string
		switch {
		case who == "X":
			// A change made beside the server (converter, deliver):
			// "X mkdir NAME" makes a Maildir++ folder directory.
			if err := outsideChange(maildir, cmd); err != nil {
				return out, err
			}
		case cmd == "wait":
			resp = p.wait(tm.least, tm.most, tm.quiet)
		default:
			var err error
			if resp, err = p.do(expandLiterals(cmd)); err != nil {
				return out, err
			}
		}
		out = append(out, normNotify(resp))
	}
	return out, nil
}

// outsideChange carries out an "X" step on the Maildir directly.
func outsideChange(maildir, cmd string) error {
	verb, arg, _ := strings.Cut(cmd, " ")
	switch verb {
	case "mkdir":
		dir := filepath.Join(maildir, "."+strings.ReplaceAll(arg, "/", "."))
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o777); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o666); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error { return os.Lchown(p, 65534, 65534) })
		}
		return nil
	}
	return fmt.Errorf("unknown outside change %q", cmd)
}

// expandLiterals turns <<TEXT>> (with \r\n escapes) into a non-
// synchronizing literal, as the session files write APPEND data.
func expandLiterals(cmd string) string {
	i := strings.Index(cmd, "<<")
	j := strings.LastIndex(cmd, ">>")
	if i < 0 || j < i {
		return cmd
	}
	body := strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(cmd[i+2 : j])
	return fmt.Sprintf("%s{%d+}\r\n%s%s", cmd[:i], len(body), body, cmd[j+2:])
}

// dovecotPeer starts dovecot's imap as alice on dir (PREAUTH).
func dovecotPeer(t *testing.T, dir, conf string) *notifyPeer {
	t.Helper()
	var stderr strings.Builder
	d := startDovecotIMAP(t, dir, conf, &stderr)
	stdin, stdout := d.stdin, d.stdout
	p := newNotifyPeer(stdin, bufio.NewReader(stdout))
	if l := <-p.lines; !strings.HasPrefix(l, "* PREAUTH") {
		t.Fatalf("dovecot greeting %q (%s)", l, stderr.String())
	}
	return p
}

func TestNotifyDovecot(t *testing.T) {
	t.Parallel() // it mostly waits
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install dovecot-imapd", dovecotIMAP)
	}
	files, err := filepath.Glob("testdata/notify/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no notify scripts: %v", err)
	}
	// The scripts mostly wait, so all of them run at once, each against
	// dovecot and mailmig side by side (t.Parallel would run only
	// GOMAXPROCS of them at a time); the subtests then compare.
	type run struct {
		steps            []string
		theirs, ours     [][]string
		theirErr, ourErr error
	}
	runs := make([]*run, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := &run{}
		runs[i] = r
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				r.steps = append(r.steps, l)
			}
		}
		// Not t.TempDir: its parent is closed to nobody, dovecot's uid.
		dir, err := os.MkdirTemp("", "mailmig-notify-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.MkdirAll(filepath.Join(dir, "alice", "Maildir"), 0o777)
		if os.Geteuid() == 0 {
			os.Chown(dir, 65534, 65534)
			filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error { return os.Lchown(p, 65534, 65534) })
		}
		os.Chmod(dir, 0o777)
		conf := filepath.Join(dir, "dovecot.conf")
		os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "%u", "Maildir")+"\nnamespace inbox {\n  separator = /\n  inbox = yes\n}\n"+
			// Both servers look for other processes' changes often (startServer: PollInterval 100ms).
			"mailbox_idle_check_interval = 1 secs\n"+
			// dovecot's "* OK Still here" keepalive comes at a per-user
			// aligned time within the interval, so at any moment of a
			// 2-minute default: out of the scripts' way.
			"imap_idle_notify_interval = 30 mins\n"), 0o644)
		dA, dB := dovecotPeer(t, dir, conf), dovecotPeer(t, dir, conf)
		ts := startServer(t)
		login := func() *notifyPeer {
			rc := dialRaw(t, ts.addr)
			rc.nc.SetDeadline(time.Time{})
			rc.send("l LOGIN alice pw-alice\r\n")
			rc.until("l ")
			return newNotifyPeer(rc.nc, rc.r)
		}
		mA, mB := login(), login()
		wg.Add(2)
		go func() {
			defer wg.Done()
			r.theirs, r.theirErr = runNotifyScript(r.steps, dA, dB, notifyDovecot, filepath.Join(dir, "alice", "Maildir"))
		}()
		go func() {
			defer wg.Done()
			r.ours, r.ourErr = runNotifyScript(r.steps, mA, mB, notifyMailmig, filepath.Join(ts.dir, "alice", "Maildir"))
		}()
	}
	wg.Wait()
	for i, f := range files {
		r := runs[i]
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			if r.theirErr != nil || r.ourErr != nil {
				t.Fatalf("dovecot: %v; mailmig: %v", r.theirErr, r.ourErr)
			}
			for i, s := range r.steps {
				if a, b := strings.Join(r.ours[i], "\n"), strings.Join(r.theirs[i], "\n"); a != b {
					t.Errorf("step %d %q:\nmailmig:\n%s\ndovecot:\n%s", i+1, s, a, b)
				}
			}
			if t.Failed() {
				for i, s := range r.steps {
					t.Logf("%d %s\n  mailmig: %q\n  dovecot: %q", i+1, s, r.ours[i], r.theirs[i])
				}
			}
		})
	}
}
