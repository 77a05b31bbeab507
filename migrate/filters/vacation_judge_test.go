package filters

import (
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The judge for vacation(1): Debian's vacation program runs over the
// corpus (in order, one database per case) as a .forward line runs it;
// the converted script runs in mailmig's delivery over the same
// messages. Each message must get a reply from both or neither, to the
// same address, with the same Subject and text. vacation(1) sends through
// /usr/sbin/sendmail: it runs in a mount namespace of its own where that
// path is a capture script.

// vacationCases are .vacation.msg files (vacation(1)'s manual page and
// variants) with the .forward line that runs vacation. The login is
// nobody (vacation(1) needs a passwd entry), alice its -a alias.
var vacationCases = []struct {
	name, msg, forward string
	// differs: messages answered knowingly differently in this case
	differs map[string]string
}{
	{"manual", "From: alice@example.com (Alice Example)\nSubject: I am on vacation\nDelivered-By-The-Graces-Of: The Vacation program\nPrecedence: bulk\n\nI am on vacation until July 22.  If you have something urgent,\nplease contact Keith <keith@example.com>.\n--alice\n",
		`\alice, "|/usr/bin/vacation -a alice nobody"`, nil},
	{"subject-var", "Subject: Re: $SUBJECT\n\nI am away until Monday; about \"$SUBJECT\" I will answer then.\n",
		`\alice, "|/usr/bin/vacation -a alice nobody"`,
		// vacation(1) takes only the first line of a folded Subject;
		// Sieve sees the field unfolded.
		map[string]string{"folded": "$SUBJECT of a folded Subject"}},
	{"no-header", "Subject: away\n\nAway.\n\nBack on the 3rd.\n",
		`alice, "|/usr/bin/vacation -a alice -a alice.example nobody"`, nil},
	{"only-vacation", "Subject: gone\n\nGone fishing.\n",
		`"|/usr/bin/vacation -a alice nobody"`, nil},
}

// vacationDiffers are corpus messages where the new server knowingly
// answers differently (docs/filters.md), with the reason.
var vacationDiffers = map[string]string{
	// RFC 5230 §4.6: no reply to mail with List-* fields; vacation(1)
	// only looks at Precedence.
	"lkml": "List-Id without Precedence",
}

func TestVacationJudge(t *testing.T) {
	vac, err := exec.LookPath("vacation")
	if err != nil {
		t.Fatal("vacation is not installed; run scripts/test-setup (make test does) to install it")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is not installed")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the vacation(1) judge needs root (a mount namespace for its sendmail)")
	}
	msgs := corpus()
	for _, vc := range vacationCases {
		t.Run(vc.name, func(t *testing.T) {
			root := t.TempDir()
			home := filepath.Join(root, "alice")
			os.MkdirAll(filepath.Join(home, "mail"), 0o755)
			os.WriteFile(filepath.Join(home, ".vacation.msg"), []byte(vc.msg), 0o644)
			os.WriteFile(filepath.Join(home, ".forward"), []byte(vc.forward+"\n"), 0o644)
			capDir := filepath.Join(root, "sent")
			os.MkdirAll(capDir, 0o755)
			capture := filepath.Join(root, "sendmail")
			os.WriteFile(capture, []byte("#!/bin/sh\nf=$(mktemp "+capDir+"/m.XXXXXXXX)\nprintf '%s\\n' \"$*\" > \"$f\"\ncat >> \"$f\"\n"), 0o755)

			// vacation(1)'s replies, message by message.
			_, args, _ := program(strings.Trim(strings.SplitN(vc.forward, `"|`, 2)[1], `"`))
			want := map[string][]string{}
			wantText := map[string]string{}
			for _, m := range msgs {
				id := msgIDRE.FindStringSubmatch(m.text)[1]
				from := m.sender
				if from == "" {
					from = "MAILER-DAEMON"
				}
				cmdArgs := append([]string{"-f", filepath.Join(root, "vacation.db"), "-m", filepath.Join(home, ".vacation.msg")}, args...)
				sh := fmt.Sprintf("mount --bind %s /usr/sbin/sendmail && exec %s \"$@\"", capture, vac)
				cmd := exec.Command("unshare", append([]string{"-m", "sh", "-c", sh, "vacation"}, cmdArgs...)...)
				cmd.Stdin = strings.NewReader("From " + from + "  Sun Dec  6 10:00:01 2026\n" + m.text)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("vacation on %s: %v\n%s", id, err, out)
				}
				ents, _ := os.ReadDir(capDir)
				for _, e := range ents {
					p := filepath.Join(capDir, e.Name())
					b, _ := os.ReadFile(p)
					os.Remove(p)
					argl, rest, _ := strings.Cut(string(b), "\n")
					_, to, _ := strings.Cut(argl, "-- ")
					want[id] = append(want[id], strings.ToLower(strings.TrimSpace(to)))
					wantText[id] = rest
				}
			}

			res, err := Convert(Options{User: "alice", Home: home, Spool: filepath.Join(root, "spool"), FoldersDir: filepath.Join(home, "mail"),
				Domain: "example.com", Addresses: []string{"alice@example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Problems) > 0 {
				t.Fatalf("problems: %v\n%s", res.Problems, res.Script)
			}
			st := mailmigVacation(t, filepath.Join(root, "new"), res.Script, msgs)
			for _, m := range msgs {
				id := msgIDRE.FindStringSubmatch(m.text)[1]
				got := st.to[id]
				wSubj, wBody := replyParts(wantText[id])
				gSubj, gBody := replyParts(st.text[id])
				same := slices.Equal(want[id], got) && wSubj == gSubj && strings.TrimSpace(wBody) == strings.TrimSpace(gBody)
				why, ok := vacationDiffers[id]
				if !ok {
					why, ok = vc.differs[id]
				}
				switch {
				case ok && same:
					t.Errorf("message %s (%s) was expected to differ and did not: %v", id, why, got)
				case !ok && !same:
					t.Errorf("message %s: vacation(1) replied to %v (Subject %q, text %q), mailmig to %v (Subject %q, text %q)",
						id, want[id], wSubj, wBody, got, gSubj, gBody)
				}
			}
			if t.Failed() {
				t.Logf("script:\n%s", numbered(res.Script))
			}
		})
	}
}

type vacationResult struct {
	to   map[string][]string
	text map[string]string
}

// mailmigVacation delivers msgs with script and collects the vacation
// replies (null sender, not the message itself).
func mailmigVacation(t *testing.T, root, script string, msgs []testMsg) vacationResult {
	t.Helper()
	out := vacationResult{to: map[string][]string{}, text: map[string]string{}}
	d := mailmigRunSender(t, root, script, msgs)
	for id, sends := range d {
		for _, s := range sends {
			if s.from != "" || strings.Contains(s.msg, "Message-ID: <"+id+"@test>") {
				continue
			}
			for _, a := range s.to {
				out.to[id] = append(out.to[id], strings.ToLower(a))
			}
			out.text[id] = s.msg
		}
	}
	return out
}

var subjRE = regexp.MustCompile(`(?mi)^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)`)

// replyParts returns a reply's decoded Subject and text.
func replyParts(msg string) (string, string) {
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	hdr, body, _ := strings.Cut(msg, "\n\n")
	subj := ""
	if m := subjRE.FindStringSubmatch(hdr); m != nil {
		subj = strings.Join(strings.Fields(m[1]), " ")
		if d, err := new(mime.WordDecoder).DecodeHeader(subj); err == nil {
			subj = d
		}
	}
	if regexp.MustCompile(`(?mi)^Content-Transfer-Encoding:\s*quoted-printable`).MatchString(hdr) {
		if b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body))); err == nil {
			body = string(b)
		}
	}
	return subj, strings.ReplaceAll(body, "\r\n", "\n")
}
