package imap

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
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

// do sends cmd and returns the responses up to its tagged one.
func (p *notifyPeer) do(t *testing.T, cmd string) []string {
	t.Helper()
	p.n++
	tag := fmt.Sprintf("n%d ", p.n)
	fmt.Fprintf(p.w, "%s%s\r\n", tag, cmd)
	var out []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("connection closed during %q: %q", cmd, out)
			}
			out = append(out, l)
			if strings.HasPrefix(l, tag) {
				return out
			}
		case <-timeout:
			t.Fatalf("no reply to %q: %q", cmd, out)
		}
	}
}

// wait returns what arrives within d.
func (p *notifyPeer) wait(d time.Duration) []string {
	var out []string
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return out
			}
			out = append(out, l)
		case <-timeout:
			return out
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

func runNotifyScript(t *testing.T, steps []string, a, b *notifyPeer) [][]string {
	t.Helper()
	var out [][]string
	for _, s := range steps {
		who, cmd, _ := strings.Cut(s, " ")
		p := a
		if who == "B" {
			p = b
		}
		var resp []string
		if cmd == "wait" {
			resp = p.wait(3 * time.Second)
		} else {
			resp = p.do(t, expandLiterals(cmd))
		}
		out = append(out, normNotify(resp))
	}
	return out
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
	args := []string{dovecotIMAP, "-c", conf}
	cmd := exec.Command(args[0], args[1:]...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i", "USER=alice", "HOME=" + filepath.Join(dir, "alice"), "PATH=/usr/bin:/bin"}, args...)...)
	} else {
		cmd.Env = []string{"USER=alice", "HOME=" + filepath.Join(dir, "alice"), "PATH=/usr/bin:/bin"}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	p := newNotifyPeer(stdin, bufio.NewReader(stdout))
	if l := <-p.lines; !strings.HasPrefix(l, "* PREAUTH") {
		t.Fatalf("dovecot greeting %q (%s)", l, stderr.String())
	}
	return p
}

func TestNotifyDovecot(t *testing.T) {
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install dovecot-imapd", dovecotIMAP)
	}
	files, err := filepath.Glob("testdata/notify/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no notify scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, l := range strings.Split(string(data), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					steps = append(steps, l)
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
				"mailbox_idle_check_interval = 1 secs\n"), 0o644)
			theirs := runNotifyScript(t, steps, dovecotPeer(t, dir, conf), dovecotPeer(t, dir, conf))

			ts := startServer(t)
			login := func() *notifyPeer {
				rc := dialRaw(t, ts.addr)
				rc.nc.SetDeadline(time.Time{})
				rc.send("l LOGIN alice pw-alice\r\n")
				rc.until("l ")
				return newNotifyPeer(rc.nc, rc.r)
			}
			ours := runNotifyScript(t, steps, login(), login())
			for i, s := range steps {
				if a, b := strings.Join(ours[i], "\n"), strings.Join(theirs[i], "\n"); a != b {
					t.Errorf("step %d %q:\nmailmig:\n%s\ndovecot:\n%s", i+1, s, a, b)
				}
			}
			if t.Failed() {
				for i, s := range steps {
					t.Logf("%d %s\n  mailmig: %q\n  dovecot: %q", i+1, s, ours[i], theirs[i])
				}
			}
		})
	}
}
