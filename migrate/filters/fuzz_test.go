package filters

import (
	"os"
	"path/filepath"
	"testing"

	"mailmig/server/sieve"
)

// FuzzConvert: any procmailrc converts to a script mailmig's Sieve
// compiler accepts (rules it cannot convert become comments), and
// never panics.
func FuzzConvert(f *testing.F) {
	files, _ := filepath.Glob("testdata/rc/*.rc")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(string(b), "\\alice, \"|exec /usr/bin/procmail\"\n")
	}
	f.Add(":0 Whc: v.lock\n* !^FROM_DAEMON\n| formail -rD 8192 v.cache\n:0 ehc\n| (formail -r; echo hi) | $SENDMAIL -t\n", "")
	f.Fuzz(func(t *testing.T, rc, fwd string) {
		if len(rc) > 4000 {
			return
		}
		home := t.TempDir()
		os.WriteFile(filepath.Join(home, ".procmailrc"), []byte(rc), 0o644)
		if fwd != "" {
			os.WriteFile(filepath.Join(home, ".forward"), []byte(fwd), 0o644)
		}
		res, err := Convert(Options{User: "alice", Home: home, Spool: "/var/mail/alice", FoldersDir: filepath.Join(home, "mail"),
			Domain: "example.com", ProcmailAlways: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Script == "" {
			return
		}
		if _, err := sieve.Compile([]byte(res.Script), sieve.Options{}); err != nil {
			t.Fatalf("script does not compile: %v\n%s", err, res.Script)
		}
	})
}

// FuzzParseForward: .forward files never panic the parser.
func FuzzParseForward(f *testing.F) {
	for _, s := range []string{"bob@example.org\n", "\\alice, \"|/usr/bin/vacation alice\"\n", "|exec /usr/bin/procmail\n", "\"unterminated\n", ":include:/etc/x, /home/a/file # c\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { ParseForward(s) })
}
