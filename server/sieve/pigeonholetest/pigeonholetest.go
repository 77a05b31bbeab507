// Package pigeonholetest runs Debian's pigeonhole tools (sieve-test,
// sievec from dovecot-sieve) on a script and a message, for tests that
// compare mailmig's Sieve results with the reference implementation's.
// The tools refuse to run as root: they run as nobody in a temporary
// directory nobody may enter.
package pigeonholetest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Result is what sieve-test says it would do.
type Result struct {
	// Folders receive a copy (implicit keep included, as "INBOX").
	Folders []string
	// Flags are the IMAP flags sieve-test says each folder's copy gets
	// (lower case, sorted; the implicit keep's under "INBOX").
	Flags map[string][]string
	// Redirects are the addresses redirected to.
	Redirects []string
	// Discarded: no copy kept, nothing redirected.
	Discarded bool
	// Failed: the script failed at run time (then only the implicit keep
	// happens).
	Failed bool
	// Vacations are the texts of the vacation replies it would send.
	Vacations []string
	// Output is sieve-test's whole output.
	Output string
}

// Dir makes a directory pigeonhole's tools (as nobody) can use.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pigeonhole-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "Maildir")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Command returns tool (sieve-test, sievec) with args, run as nobody
// with the configuration of dir.
func Command(t testing.TB, dir, tool string, args ...string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed; run scripts/test-setup (make test does) to install dovecot-sieve", tool)
	}
	full := append([]string{path, "-c", filepath.Join(dir, "dovecot.conf")}, args...)
	if os.Geteuid() != 0 {
		return exec.Command(full[0], full[1:]...)
	}
	return exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=" + dir, "USER=nobody"}, full...)...)
}

// Run runs sieve-test on script and msg and parses what it would do.
func Run(t testing.TB, script, msg string) Result {
	t.Helper()
	dir := Dir(t)
	sp, mp := filepath.Join(dir, "s.sieve"), filepath.Join(dir, "m.eml")
	os.WriteFile(sp, []byte(script), 0o644)
	os.WriteFile(mp, []byte(msg), 0o644)
	out, err := Command(t, dir, "sieve-test", sp, mp).CombinedOutput()
	r := Result{Output: string(out)}
	if err != nil && !strings.Contains(r.Output, "final result") {
		t.Fatalf("sieve-test: %v\n%s", err, out)
	}
	r.Failed = strings.Contains(r.Output, "final result: failed")
	r.Flags = map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(r.Output))
	last := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "* store message in folder: "):
			last = strings.TrimPrefix(l, "* store message in folder: ")
			r.Folders = append(r.Folders, last)
		case strings.HasPrefix(l, "+ add IMAP flags: ") && last != "":
			f := strings.Fields(strings.ToLower(strings.TrimPrefix(l, "+ add IMAP flags: ")))
			slices.Sort(f)
			r.Flags[last] = f
		case strings.HasPrefix(l, "* "):
			last = ""
			if strings.HasPrefix(l, "* redirect message to: ") {
				r.Redirects = append(r.Redirects, strings.Trim(strings.TrimPrefix(l, "* redirect message to: "), "<>"))
			}
		}
	}
	if _, rest, ok := strings.Cut(r.Output, "START MESSAGE\n"); ok {
		for ok {
			var body string
			body, rest, _ = strings.Cut(rest, "\nEND MESSAGE")
			r.Vacations = append(r.Vacations, body)
			_, rest, ok = strings.Cut(rest, "START MESSAGE\n")
		}
	}
	if r.Failed && !slices.Contains(r.Folders, "INBOX") && strings.Contains(r.Output, "successful implicit keep") {
		r.Folders = append(r.Folders, "INBOX")
	}
	slices.Sort(r.Folders)
	r.Discarded = len(r.Folders) == 0 && len(r.Redirects) == 0
	return r
}
