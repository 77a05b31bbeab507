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

// Setup is a whole pigeonhole environment for one case: the user's
// script, other personal scripts (for include), global scripts
// (sieve_global, for include :global) and the envelope.
type Setup struct {
	Script   string
	Personal map[string]string // NAME -> text, in the personal script dir
	Global   map[string]string // NAME -> text, in the global dir
	From, To string            // envelope ("" From = null sender)
	Msg      string
}

// Sent is a message sieve-test would send.
type Sent struct {
	From string // envelope sender ("" = null)
	To   string
	Msg  string
}

// Exec is what sieve-test -e did: the Maildir it delivered into, what it
// would have sent, whether the script failed.
type Exec struct {
	// Maildir is the mail location's root (open it with mailstore).
	Maildir string
	Sent    []Sent
	Failed  bool
	Output  string
	// CompileError is sieve-test's complaint when the script did not
	// compile ("" when it did).
	CompileError string
}

// SpamRule is the site's spam rule as mailmig builds it by default
// (delivery.DefaultGlobalScript("X-Spam-Level", "*****", "junk"); a
// delivery test keeps the two equal). Conf installs it as the global
// script "spam", so `include :global "spam"` works in the reference set-up
// as in mailmig.
const SpamRule = "require \"fileinto\";\r\nif header :contains \"X-Spam-Level\" \"*****\" { fileinto \"junk\"; }\r\n"

// Conf writes a dovecot.conf for dir enabling the extensions mailmig
// advertises (editheader, vacation-seconds, spamtest, spamtestplus and
// virustest are off by default in pigeonhole), with the spamtest settings
// mailmig uses by default (X-Spam-Level stars, 5 = certainly spam;
// virustest on X-Virus-Status: clean = 1, infected = 5), dir/global as
// sieve_global and dir/sieve as the personal script directory.
func Conf(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"global", "sieve", "Maildir"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, d), 0o777)
	}
	conf := "mail_location = maildir:" + filepath.Join(dir, "Maildir") + "\n" +
		"namespace inbox {\n  inbox = yes\n  separator = /\n}\n" +
		"plugin {\n" +
		"  sieve_extensions = +editheader +vacation-seconds +spamtest +spamtestplus +virustest\n" +
		"  sieve_global = " + filepath.Join(dir, "global") + "\n" +
		"  sieve = file:" + filepath.Join(dir, "sieve") + "\n" +
		"  sieve_spamtest_status_type = strlen\n" +
		"  sieve_spamtest_status_header = X-Spam-Level\n" +
		"  sieve_spamtest_max_value = 5\n" +
		"  sieve_virustest_status_type = text\n" +
		"  sieve_virustest_status_header = X-Virus-Status\n" +
		"  sieve_virustest_text_value1 = clean\n" +
		"  sieve_virustest_text_value5 = infected\n" +
		"  sieve_vacation_min_period = 1s\n" +
		"}\n"
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "global", "spam.sieve"), []byte(SpamRule), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ExecCase runs sieve-test -e -l on s: it really stores into a Maildir
// (so flags and header edits can be compared), and reports what it would
// send.
func ExecCase(t testing.TB, s Setup) Exec {
	t.Helper()
	dir := Dir(t)
	Conf(t, dir)
	for name, text := range s.Personal {
		os.WriteFile(filepath.Join(dir, "sieve", name+".sieve"), []byte(text), 0o644)
	}
	for name, text := range s.Global {
		os.WriteFile(filepath.Join(dir, "global", name+".sieve"), []byte(text), 0o644)
	}
	// The site's spam folder exists, as on a migrated account (sieve-test
	// -l ignores namespace autocreate settings).
	for _, sub := range []string{"cur", "new", "tmp"} {
		p := filepath.Join(dir, "Maildir", ".junk", sub)
		os.MkdirAll(p, 0o777)
		os.Chmod(p, 0o777)
		os.Chmod(filepath.Dir(p), 0o777)
	}
	os.WriteFile(filepath.Join(dir, "Maildir", ".junk", "maildirfolder"), nil, 0o666)
	sp, mp := filepath.Join(dir, "s.sieve"), filepath.Join(dir, "m.eml")
	os.WriteFile(sp, []byte(s.Script), 0o644)
	os.WriteFile(mp, []byte(s.Msg), 0o644)
	from := s.From
	if from == "" {
		from = "<>"
	}
	args := []string{"-e", "-l", "maildir:" + filepath.Join(dir, "Maildir"), "-f", from}
	if s.To != "" {
		args = append(args, "-a", s.To, "-r", s.To)
	}
	cmd := Command(t, dir, "sieve-test", append(args, sp, mp)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Exec{Maildir: filepath.Join(dir, "Maildir"), Output: stderr.String() + stdout.String()}
	if err != nil && strings.Contains(r.Output, "failed to compile sieve script") {
		r.CompileError = r.Output
		return r
	}
	if err != nil && !strings.Contains(r.Output, "final result") {
		t.Fatalf("sieve-test: %v\n%s", err, r.Output)
	}
	r.Failed = strings.Contains(r.Output, "final result: failed")
	// stderr says "sending message from <X>:" in order; stdout (written
	// at exit) holds the messages, each starting with "X-Sieve:", then
	// "RECIPIENT: addr" blocks in the same order.
	for _, l := range strings.Split(stderr.String(), "\n") {
		if _, f, ok := strings.Cut(l, "sending message from <"); ok {
			f, _, _ = strings.Cut(f, ">")
			r.Sent = append(r.Sent, Sent{From: f})
		}
	}
	body := stdout.String()
	if i := strings.Index(body, "\nRECIPIENT: "); i >= 0 {
		for k, l := range strings.Split(body[i:], "\n") {
			_ = k
			if a, ok := strings.CutPrefix(l, "RECIPIENT: "); ok {
				for j := range r.Sent {
					if r.Sent[j].To == "" {
						r.Sent[j].To = strings.TrimSpace(a)
						break
					}
				}
			}
		}
		body = body[:i]
	}
	msgs := strings.Split(body, "X-Sieve: Pigeonhole")
	k := 0
	for _, m := range msgs[1:] {
		if k < len(r.Sent) {
			r.Sent[k].Msg = strings.ReplaceAll("X-Sieve: Pigeonhole"+m, "\r\n", "\n")
		}
		k++
	}
	return r
}

// Compile runs sievec on script (with the Setup's includes in place) and
// returns its error output, "" when it compiled.
func Compile(t testing.TB, s Setup) string {
	t.Helper()
	dir := Dir(t)
	Conf(t, dir)
	for name, text := range s.Personal {
		os.WriteFile(filepath.Join(dir, "sieve", name+".sieve"), []byte(text), 0o644)
	}
	for name, text := range s.Global {
		os.WriteFile(filepath.Join(dir, "global", name+".sieve"), []byte(text), 0o644)
	}
	sp := filepath.Join(dir, "s.sieve")
	os.WriteFile(sp, []byte(s.Script), 0o644)
	out, err := Command(t, dir, "sievec", sp, filepath.Join(dir, "s.svbin")).CombinedOutput()
	if err == nil {
		return ""
	}
	if len(out) == 0 {
		return err.Error()
	}
	return string(out)
}
