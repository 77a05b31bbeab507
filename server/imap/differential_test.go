package imap

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The differential harness: each file in testdata/sessions is a list of
// IMAP commands (one a line, "#" comments), run after login against
// mailmig's server and against Debian's dovecot imap (in PREAUTH mode,
// the same Maildir++ layout with "/" as separator, each on a fresh
// Maildir). Per command, the untagged responses (as a set: their order
// is not significant) and the tagged status with its response code must
// be the same; the human-readable text after the code may differ.

const dovecotIMAP = "/usr/lib/dovecot/imap"

// dovecotSession runs cmds through dovecot's imap binary as nobody (it
// refuses root) on a fresh Maildir, and returns each command's responses.
func dovecotSession(t *testing.T, cmds []string) [][]string {
	t.Helper()
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install dovecot-imapd", dovecotIMAP)
	}
	dir, err := os.MkdirTemp("", "mailmig-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "Maildir")+"\nnamespace inbox {\n  separator = /\n  inbox = yes\n}\n"), 0o644)
	args := []string{dovecotIMAP, "-c", conf}
	cmd := exec.Command(args[0], args[1:]...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i", "USER=nobody", "HOME=" + dir, "PATH=/usr/bin:/bin"}, args...)...)
	} else {
		cmd.Env = []string{"USER=" + os.Getenv("USER"), "HOME=" + dir, "PATH=/usr/bin:/bin"}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	// One command at a time, each after the previous reply: dovecot
	// stops at end of input without finishing pipelined commands.
	r := bufio.NewReader(stdout)
	var all strings.Builder
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	readUntil := func(tag string) {
		for {
			l, err := r.ReadString('\n')
			all.WriteString(l)
			if err != nil {
				t.Fatalf("dovecot imap: %v\n%s", err, all.String())
			}
			if strings.HasPrefix(l, tag) {
				return
			}
		}
	}
	for i, c := range cmds {
		tag := fmt.Sprintf("t%d ", i)
		fmt.Fprintf(stdin, "%s%s\r\n", tag, c)
		readUntil(tag)
	}
	fmt.Fprintf(stdin, "z LOGOUT\r\n")
	return splitByTag(t, all.String(), len(cmds))
}

// mailmigSession runs cmds on our server as alice on a fresh Maildir.
func mailmigSession(t *testing.T, cmds []string) [][]string {
	t.Helper()
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	var in strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&in, "t%d %s\r\n", i, c)
	}
	rc.send(in.String())
	var all strings.Builder
	for i := range cmds {
		for _, l := range rc.until(fmt.Sprintf("t%d ", i)) {
			all.WriteString(l + "\r\n")
		}
	}
	return splitByTag(t, all.String(), len(cmds))
}

// splitByTag groups a transcript into each command's responses: the
// untagged ones sorted, then the tagged status with its code.
func splitByTag(t *testing.T, transcript string, n int) [][]string {
	t.Helper()
	out := make([][]string, n)
	var pending []string
	sc := bufio.NewScanner(strings.NewReader(transcript))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	i := 0
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(l, "* PREAUTH"), strings.HasPrefix(l, "* BYE"), l == "",
			// RFC 7162 §3.1.2.1: a server that keeps mod-sequences MUST
			// send HIGHESTMODSEQ on every SELECT/EXAMINE; dovecot sends
			// it only after CONDSTORE is enabled. Its value is ours.
			strings.HasPrefix(l, "* OK [HIGHESTMODSEQ "):
		case strings.HasPrefix(l, "* "), strings.HasPrefix(l, "+ "):
			pending = append(pending, normValues(normAttrs(l)))
		case i < n && strings.HasPrefix(l, fmt.Sprintf("t%d ", i)):
			slices.Sort(pending)
			out[i] = append(pending, normValues(normStatus(strings.TrimPrefix(l, fmt.Sprintf("t%d ", i)))))
			pending = nil
			i++
		}
	}
	if i != n {
		t.Fatalf("transcript has %d of %d tagged replies:\n%s", i, n, transcript)
	}
	return out
}

var listRE = regexp.MustCompile(`^(\* (?:LIST|LSUB) \()([^)]*)(\).*)$`)

// normAttrs sorts the attributes of a LIST/LSUB response: they are a set
// (RFC 9051 §7.3.1), so their order may differ.
func normAttrs(l string) string {
	m := listRE.FindStringSubmatch(l)
	if m == nil {
		return l
	}
	attrs := strings.Fields(m[2])
	slices.Sort(attrs)
	return m[1] + strings.Join(attrs, " ") + m[3]
}

var (
	uidValidityRE = regexp.MustCompile(`\[(UIDVALIDITY|APPENDUID|COPYUID) \d+`)
	modseqRE      = regexp.MustCompile(`(MODSEQ|HIGHESTMODSEQ) \(?\d+`)
	flagListRE    = regexp.MustCompile(`^(\* FLAGS \(|\* OK \[PERMANENTFLAGS \(|\* \d+ FETCH \(.*FLAGS \()([^)]*)(\).*)$`)
)

// normValues replaces what legitimately differs between two servers on
// the same input: UIDVALIDITY values (a server picks them) and
// mod-sequence values; and sorts flag lists (sets).
func normValues(l string) string {
	// The text after an untagged status's response code is for people.
	if strings.HasPrefix(l, "* OK [") || strings.HasPrefix(l, "* NO [") {
		if i := strings.IndexByte(l, ']'); i > 0 {
			l = l[:i+1]
		}
	}
	l = uidValidityRE.ReplaceAllString(l, "[$1 V")
	l = modseqRE.ReplaceAllString(l, "$1 M")
	if m := flagListRE.FindStringSubmatch(l); m != nil {
		f := strings.Fields(m[2])
		slices.Sort(f)
		l = m[1] + strings.Join(f, " ") + m[3]
	}
	return l
}

var statusRE = regexp.MustCompile(`^(OK|NO|BAD)( \[[^\]]*\])?`)

// normStatus keeps the status and response code of a tagged reply.
func normStatus(s string) string {
	return statusRE.FindString(s)
}

func readSession(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, literals(l))
		}
	}
	return cmds
}

var literalRE = regexp.MustCompile(`<<(.*?)>>`)

// literals turns each <<text>> of a session line into a LITERAL+ literal
// ({n+} CRLF text), with \r\n in text meaning CRLF, so messages can be
// APPENDed from one-line commands.
func literals(l string) string {
	return literalRE.ReplaceAllStringFunc(l, func(m string) string {
		text := strings.ReplaceAll(m[2:len(m)-2], `\r\n`, "\r\n")
		return fmt.Sprintf("{%d+}\r\n%s", len(text), text)
	})
}

// TestDovecotSessions runs every session file against both servers.
func TestDovecotSessions(t *testing.T) {
	files, err := filepath.Glob("testdata/sessions/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no session files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			cmds := readSession(t, f)
			theirs := dovecotSession(t, cmds)
			ours := mailmigSession(t, cmds)
			for i, c := range cmds {
				if a, b := strings.Join(ours[i], "\n"), strings.Join(theirs[i], "\n"); a != b {
					t.Errorf("%s\nmailmig:\n%s\ndovecot:\n%s", c, a, b)
				}
			}
		})
	}
}
