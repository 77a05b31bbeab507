package filters

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestForwardForms: every .forward form (local(8), aliases(5)) and where
// the converted script sends a message. The procmail and vacation(1)
// parts are judged against the real programs in TestProcmailJudge and
// TestVacationJudge; this table fixes what the other entries become.
func TestForwardForms(t *testing.T) {
	msg := corpus()[0] // from bob, to alice
	for _, c := range []struct {
		name, forward string
		problems      int
		want          []string
	}{
		{"address", "carol@example.net\n", 0, []string{"fwd:carol@example.net"}},
		{"address-and-self", "carol@example.net, \\alice\n", 0, []string{"folder:INBOX", "fwd:carol@example.net"}},
		{"two-addresses", "carol@example.net\ndave@example.org\n", 0, []string{"fwd:carol@example.net", "fwd:dave@example.org"}},
		{"self", "\\alice\n", 0, []string{"folder:INBOX"}},
		{"own-name", "alice\n", 0, []string{"folder:INBOX"}},
		{"bare-name", "dave\n", 0, []string{"fwd:dave@example.com"}},
		{"quoted-and-comment", "# my forward\n\"carol@example.net\" # to carol\n", 0, []string{"fwd:carol@example.net"}},
		{"angle", "<carol@example.net>\n", 0, []string{"fwd:carol@example.net"}},
		{"file", "HOME/mail/saved\n", 0, []string{"folder:saved"}},
		{"file-and-self", "\\alice, HOME/mail/saved\n", 0, []string{"folder:INBOX", "folder:saved"}},
		{"program", "\"|/usr/local/bin/sorter\"\n", 1, []string{"folder:INBOX"}},
		{"program-unquoted", "|/usr/local/bin/sorter --fast\n", 1, []string{"folder:INBOX"}},
		{"include", ":include:/etc/mail/alice.list\n", 1, []string{"folder:INBOX"}},
		{"invalid-address", "carol@@example.net\n", 1, []string{"folder:INBOX"}},
		{"procmail", "\"|exec /usr/bin/procmail\"\n", 0, []string{"folder:lists"}},
		{"procmail-ifs", "\"|IFS=' ' && exec /usr/bin/procmail -f- || exit 75 #alice\"\n", 0, []string{"folder:lists"}},
		{"self-and-procmail", "\\alice, \"|/usr/bin/procmail\"\n", 0, []string{"folder:lists"}},
		{"vacation", "\\alice, \"|/usr/bin/vacation alice\"\n", 0, []string{"folder:INBOX", "vacation:bob@example.org"}},
		{"vacation-only", "\"|/usr/bin/vacation alice\"\n", 0, []string{"vacation:bob@example.org"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			home := filepath.Join(root, "alice")
			os.MkdirAll(filepath.Join(home, "mail"), 0o755)
			os.WriteFile(filepath.Join(home, ".forward"), []byte(strings.ReplaceAll(c.forward, "HOME", home)), 0o644)
			os.WriteFile(filepath.Join(home, ".vacation.msg"), []byte("Subject: away\n\nI am away.\n"), 0o644)
			os.WriteFile(filepath.Join(home, ".procmailrc"), []byte("MAILDIR=$HOME/mail\n:0:\n* ^From:.*bob\nlists\n"), 0o644)
			res, err := Convert(Options{User: "alice", Home: home, Spool: filepath.Join(root, "spool"), FoldersDir: filepath.Join(home, "mail"),
				Domain: "example.com", Addresses: []string{"alice@example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Problems) != c.problems {
				t.Errorf("problems %v, want %d", res.Problems, c.problems)
			}
			got := mailmigRun(t, filepath.Join(root, "new"), res.Script, []testMsg{msg})["plain"]
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v\n%s", got, want, numbered(res.Script))
			}
		})
	}
}
