package aliases

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func testTable(t *testing.T) *Table {
	t.Helper()
	users := map[string]bool{"alice": true, "bob": true, "dave": true}
	tb := &Table{Path: "testdata/aliases", Domains: []string{"example.org"},
		IsUser: func(n string) (bool, error) { return users[n], nil }}
	if err := tb.Load(); err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestExpand(t *testing.T) {
	tb := testTable(t)
	for _, tc := range []struct {
		name     string
		users    []string
		external []string
		err      error
	}{
		{name: "postmaster", users: []string{"alice"}, external: []string{"alice-backup@elsewhere.example"}},
		{name: "PostMaster", users: []string{"alice"}, external: []string{"alice-backup@elsewhere.example"}},
		{name: "alice.liddell", users: []string{"alice"}, external: []string{"alice-backup@elsewhere.example"}},
		{name: "b.builder", users: []string{"bob"}},
		{name: "help desk", users: []string{"alice"}, external: []string{"alice-backup@elsewhere.example"}},
		{name: "staff", users: []string{"alice", "bob"}, external: []string{"alice-backup@elsewhere.example", "carol@elsewhere.example"}},
		{name: "team", users: []string{"alice", "bob", "dave"}, external: []string{"alice-backup@elsewhere.example", "carol@elsewhere.example"}},
		{name: "loop1", users: []string{"bob"}},
		{name: "bob", users: []string{"bob"}},
		{name: "ghost", err: ErrUnknown},
		{name: "nosuch", err: ErrUnknown},
	} {
		exp, err := tb.Expand(tc.name)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Expand(%q) = %+v, %v; want %v", tc.name, exp, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(exp.Users, tc.users) || !reflect.DeepEqual(exp.External, tc.external) {
			t.Errorf("Expand(%q) = %+v, %v; want users %v external %v", tc.name, exp, err, tc.users, tc.external)
		}
	}
}

func TestSoleUserAndAliasesOf(t *testing.T) {
	tb := testTable(t)
	if got := tb.AliasesOf("bob"); !reflect.DeepEqual(got, []string{"b.builder", "loop1", "loop2"}) {
		t.Errorf("AliasesOf(bob) = %v", got)
	}
	// alice's aliases all copy alice-backup too: alice alone owns none.
	if got := tb.AliasesOf("alice"); len(got) != 0 {
		t.Errorf("AliasesOf(alice) = %v, want none (every alias also goes elsewhere)", got)
	}
	for _, tc := range []struct {
		name, user string
		want       bool
	}{
		{"b.builder", "bob", true}, {"B.Builder", "bob", true}, {"bob", "bob", true},
		{"staff", "bob", false}, {"b.builder", "alice", false}, {"nosuch", "bob", false},
	} {
		if got := tb.SoleUser(tc.name, tc.user); got != tc.want {
			t.Errorf("SoleUser(%q, %q) = %v", tc.name, tc.user, got)
		}
	}
}

// With no postmaster entry in the file, Table.Postmaster answers.
func TestPostmasterFallback(t *testing.T) {
	tb := &Table{Postmaster: []string{"dave"}, IsUser: func(n string) (bool, error) { return n == "dave", nil }}
	if err := tb.Load(); err != nil {
		t.Fatal(err)
	}
	exp, err := tb.Expand("postmaster")
	if err != nil || !reflect.DeepEqual(exp.Users, []string{"dave"}) {
		t.Fatalf("postmaster = %+v, %v", exp, err)
	}
	if got := tb.AliasesOf("dave"); !reflect.DeepEqual(got, []string{"postmaster"}) {
		t.Errorf("AliasesOf(dave) = %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a: |/usr/bin/vacation", "line 1: a: command target"},
		{"a: /var/log/mail", "file target"},
		{"a: :include:/etc/list", ":include:"},
		{"\n\n  bob", "line 3: continuation line"},
		{"a b: c", "bad alias name"},
		{"a c", `no ":"`},
		{"a: x\nA: y", `line 2: "A" is defined twice (first at line 1)`},
		{"a:", "no target"},
		{`a: "x`, "unterminated quote"},
	} {
		_, err := Parse(strings.NewReader(tc.in), "f")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestParseLikePostalias reads testdata/aliases with Postfix's postalias
// and compares every entry's value with ours (Postfix's own reading of
// the format is the reference).
func TestParseLikePostalias(t *testing.T) {
	postalias, err := exec.LookPath("postalias")
	if err != nil {
		t.Fatal("postalias is not installed (Debian package postfix; make test installs it)")
	}
	dir := t.TempDir()
	cf := filepath.Join(dir, "cf")
	if err := os.Mkdir(cf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cf, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("testdata/aliases")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "aliases")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		cmd := exec.Command(postalias, args...)
		cmd.Env = append(os.Environ(), "MAIL_CONFIG="+cf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("postalias %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(file)
	m, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Names()) != 22 {
		t.Errorf("%d names, want 22", len(m.Names()))
	}
	for _, name := range m.Names() {
		var theirs []string
		for _, v := range strings.Split(run("-q", name, file), ",") {
			theirs = append(theirs, strings.TrimSpace(v))
		}
		ours, _ := m.Targets(name)
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("%q: ours %q, postalias %q", name, ours, theirs)
		}
	}
}

func FuzzParse(f *testing.F) {
	src, _ := os.ReadFile("testdata/aliases")
	f.Add(string(src))
	f.Add("a: b,\n c\n")
	f.Add(`"x y": "q"@d, e`)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := Parse(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		tb := &Table{IsUser: func(n string) (bool, error) { return len(n)%2 == 0, nil }}
		tb.m = m
		for _, n := range m.Names() {
			tb.Expand(n)
			tb.AliasesOf(n)
		}
	})
}
