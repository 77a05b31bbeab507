package rules

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mailmig/server/sieve"
	"mailmig/server/sieve/pigeonholetest"
)

// formRules is one rule of every shape the form makes.
func formRules() *Set {
	return &Set{
		Vacation: &Vacation{Subject: "Away", From: "alice@example.org", Days: 3, Start: "2026-01-01", End: "2026-12-31",
			Addresses: []string{"alice@example.org", "a.smith@example.org"}, Text: "I am away.\n..back on Monday\n\"quoted\" \\ text"},
		Rules: []Rule{
			{Name: "lists", Conditions: []Condition{{Field: FieldHeader + "List-Id", Op: OpContains, Value: "debian-devel"}},
				Actions: []Action{{Kind: ActFileinto, Arg: "lists/debian-devel", Create: true}}},
			{Name: "boss", Any: true, Conditions: []Condition{{Field: FieldFrom, Op: OpIs, Value: "boss@example.org"}, {Field: FieldSubject, Op: OpMatches, Value: "*urgent?"}},
				Actions: []Action{{Kind: ActFlag}, {Kind: ActFileinto, Arg: "INBOX"}}, Continue: true},
			{Name: "big", Conditions: []Condition{{Field: FieldSize, Op: OpOver, Value: "5M"}, {Field: FieldTo, Op: OpContains, Not: true, Value: "me"}},
				Actions: []Action{{Kind: ActRedirectCpy, Arg: "archive@example.net"}, {Kind: ActDiscard}}},
			{Name: "re \"x\"", Conditions: []Condition{{Field: FieldSubject, Op: OpRegex, Value: `^\[(Work|Play)\] .*$`}},
				Actions: []Action{{Kind: ActFileinto, Arg: "Work"}, {Kind: ActKeepDeleted}}},
			{Name: "off", Disabled: true, Conditions: []Condition{{Field: FieldAnyTo, Op: OpContains, Value: "x"}},
				Actions: []Action{{Kind: ActRedirect, Arg: "bob@example.net"}}},
			{Name: "small", Conditions: []Condition{{Field: FieldSize, Op: OpUnder, Value: "100"}},
				Actions: []Action{{Kind: ActSeen}, {Kind: ActVacation, Arg: "short reply", Days: 1}}},
			{Name: "all", Actions: []Action{{Kind: ActFileinto, Arg: "Grün"}}},
		},
	}
}

func TestScriptRoundTrip(t *testing.T) {
	s := formRules()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	script := s.Script()
	back, err := Parse(script)
	if err != nil {
		t.Fatalf("Parse of own script: %v\n%s", err, script)
	}
	if got := back.Script(); string(got) != string(script) {
		t.Fatalf("round trip differs:\n%s\n---\n%s", got, script)
	}
	if len(back.Rules) != len(s.Rules) || back.Vacation == nil || back.Vacation.Text != s.Vacation.Text {
		t.Fatalf("rules lost: %+v", back)
	}
	// An edit anywhere makes it foreign.
	edited := strings.Replace(string(script), "stop;", "keep;", 1)
	if _, err := Parse([]byte(edited)); !errors.Is(err, ErrForeign) {
		t.Fatalf("edited script: %v, want ErrForeign", err)
	}
	for _, foreign := range []string{"require \"fileinto\";\nfileinto \"x\";\n", Header + "\n# rule: !!!\n"} {
		if _, err := Parse([]byte(foreign)); !errors.Is(err, ErrForeign) {
			t.Fatalf("%q: %v, want ErrForeign", foreign, err)
		}
	}
	if s, err := Parse(nil); err != nil || len(s.Rules) != 0 {
		t.Fatalf("empty: %v %v", s, err)
	}
}

// TestScriptsCompile: every script the form makes compiles with
// pigeonhole's sievec (the reference) and with mailmig's own compiler.
func TestScriptsCompile(t *testing.T) {
	sievec, err := exec.LookPath("sievec")
	if err != nil {
		t.Fatalf("sievec is not installed; run scripts/test-setup (make test does)")
	}
	cases := map[string]*Set{"form": formRules()}
	for i, r := range formRules().Rules {
		cases["rule"+string(rune('a'+i))] = &Set{Rules: []Rule{r}}
	}
	cases["vacation-only"] = &Set{Vacation: &Vacation{Text: "away"}}
	dir := worldDir(t)
	for name, s := range cases {
		if err := s.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		script := s.Script()
		if err := sieve.Validate(script); err != nil {
			t.Errorf("%s: mailmig refuses the page's script: %v\n%s", name, err, script)
		}
		path := filepath.Join(dir, name+".sieve")
		if err := os.WriteFile(path, script, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := pigeonhole(sievec, dir, path, filepath.Join(dir, name+".svbin"))
		if err != nil {
			t.Errorf("%s: sievec refuses the page's script: %v\n%s\n%s", name, err, out, script)
		}
	}
}

// worldDir is a temporary directory everybody can enter (pigeonhole's
// tools run as nobody).
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rules-pigeonhole-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// dovecot.conf with dir/global as sieve_global holding the site's
	// spam rule, which the page's scripts include.
	pigeonholetest.Conf(t, dir)
	return dir
}

// pigeonhole runs a pigeonhole tool as nobody (it refuses to run as
// root) with a minimal dovecot configuration in dir.
func pigeonhole(tool, dir string, args ...string) ([]byte, error) {
	conf := filepath.Join(dir, "dovecot.conf")
	if _, err := os.Stat(conf); err != nil {
		if err := os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "Maildir")+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	full := append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=" + dir, "USER=nobody", tool, "-c", conf}, args...)
	cmd := exec.Command("setpriv", full...)
	if os.Geteuid() != 0 {
		cmd = exec.Command(tool, append([]string{"-c", conf}, args...)...)
	}
	return cmd.CombinedOutput()
}

func TestValidateRefuses(t *testing.T) {
	bad := []Rule{
		{Name: "no action"},
		{Name: "x", Actions: []Action{{Kind: ActRedirect, Arg: "not an address"}}},
		{Name: "x", Actions: []Action{{Kind: ActRedirect, Arg: "bob@example.net> NOTIFY=SUCCESS"}}},
		{Name: "x", Actions: []Action{{Kind: ActRedirect, Arg: "Bob <bob@example.net>"}}},
		{Name: "x", Actions: []Action{{Kind: ActFileinto, Arg: ""}}},
		{Name: "x", Actions: []Action{{Kind: "exec", Arg: "/bin/sh"}}},
		{Name: "x", Actions: []Action{{Kind: ActReject, Arg: "no"}, {Kind: ActFileinto, Arg: "x"}}},
		{Name: "x", Conditions: []Condition{{Field: "header:Bad Name", Op: OpContains, Value: "x"}}, Actions: []Action{{Kind: ActDiscard}}},
		{Name: "x", Conditions: []Condition{{Field: FieldSubject, Op: OpRegex, Value: "(unclosed"}}, Actions: []Action{{Kind: ActDiscard}}},
		{Name: "x", Conditions: []Condition{{Field: FieldSize, Op: OpContains, Value: "5"}}, Actions: []Action{{Kind: ActDiscard}}},
		{Name: "x", Conditions: []Condition{{Field: FieldSize, Op: OpOver, Value: "lots"}}, Actions: []Action{{Kind: ActDiscard}}},
		{Name: "two\nlines", Actions: []Action{{Kind: ActDiscard}}},
	}
	for i, r := range bad {
		s := &Set{Rules: []Rule{r}}
		if err := s.Validate(); err == nil {
			t.Errorf("case %d (%+v) accepted", i, r)
		}
	}
	s := &Set{Vacation: &Vacation{Text: "away"}, Rules: []Rule{{Name: "r", Actions: []Action{{Kind: ActReject, Arg: "go away"}}}}}
	if err := s.Validate(); err == nil {
		t.Error("reject with vacation accepted")
	}
	for _, v := range []Vacation{{Text: ""}, {Text: "x", Start: "2026-13"}, {Text: "x", Start: "2026-05-02", End: "2026-05-01"}, {Text: "x", From: "nobody"}, {Text: "x", Subject: "a\nb"}} {
		s := &Set{Vacation: &v}
		if err := s.Validate(); err == nil {
			t.Errorf("vacation %+v accepted", v)
		}
	}
}

// TestValuesCannotEscape: whatever a user types stays inside its string.
func TestValuesCannotEscape(t *testing.T) {
	nasty := "\"; redirect \"evil@example.net\"; if true { #"
	s := &Set{Rules: []Rule{{Name: nasty, Conditions: []Condition{{Field: FieldSubject, Op: OpContains, Value: nasty + "\\"}},
		Actions: []Action{{Kind: ActFileinto, Arg: nasty}}}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	script := s.Script()
	if err := sieve.Validate(script); err != nil {
		t.Fatalf("%v\n%s", err, script)
	}
	// pigeonhole, on a message that matches, does only the fileinto.
	dir := worldDir(t)
	path, msg := filepath.Join(dir, "s.sieve"), filepath.Join(dir, "m.eml")
	os.WriteFile(path, script, 0o644)
	os.WriteFile(msg, []byte("From: a@example.org\nSubject: "+nasty+"\\\n\nbody\n"), 0o644)
	out, err := pigeonhole("sieve-test", dir, path, msg)
	if err != nil {
		t.Fatalf("sieve-test: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "* redirect") || !strings.Contains(string(out), "store message in folder: \"; redirect") {
		t.Fatalf("a value escaped its string:\n%s\n%s", out, script)
	}
	back, err := Parse(script)
	if err != nil || back.Rules[0].Actions[0].Arg != nasty {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(formRules().Script())
	f.Add([]byte(Header + "\n# rule: e30\n"))
	f.Add([]byte("keep;"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		// What Parse accepts is exactly what its rules generate.
		if string(s.Script()) != string(b) && len(b) > 0 && len(strings.TrimSpace(string(b))) > 0 {
			t.Fatalf("accepted script differs from its rules' script")
		}
	})
}
