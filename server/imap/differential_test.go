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
	var in strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&in, "t%d %s\r\n", i, c)
	}
	in.WriteString("z LOGOUT\r\n")
	args := []string{dovecotIMAP, "-c", conf}
	cmd := exec.Command(args[0], args[1:]...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i", "USER=nobody", "HOME=" + dir, "PATH=/usr/bin:/bin"}, args...)...)
	} else {
		cmd.Env = []string{"USER=" + os.Getenv("USER"), "HOME=" + dir, "PATH=/usr/bin:/bin"}
	}
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dovecot imap: %v\n%s", err, out)
	}
	return splitByTag(t, string(out), len(cmds))
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
		case strings.HasPrefix(l, "* PREAUTH"), strings.HasPrefix(l, "* BYE"), l == "":
		case strings.HasPrefix(l, "* "), strings.HasPrefix(l, "+ "):
			pending = append(pending, normAttrs(l))
		case i < n && strings.HasPrefix(l, fmt.Sprintf("t%d ", i)):
			slices.Sort(pending)
			out[i] = append(pending, normStatus(strings.TrimPrefix(l, fmt.Sprintf("t%d ", i))))
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
			cmds = append(cmds, l)
		}
	}
	return cmds
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
