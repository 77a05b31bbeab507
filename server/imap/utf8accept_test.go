package imap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUTF8Accept: RFC 6855 on a raw session — the capability, ENABLE,
// UTF-8 mailbox names both ways (kept on disk in modified UTF-7 as
// dovecot names them, and dovecot then finds the folder and its message),
// the APPEND UTF8 data item, and the charset rules of §3 / erratum 4029.
func TestUTF8Accept(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	if l := strings.Join(rc.until("l "), "\n"); !strings.Contains(l, " UTF8=ACCEPT") {
		t.Errorf("no UTF8=ACCEPT in the capabilities: %q", l)
	}
	msg := "Subject: Grüße aus Köln\r\nFrom: jörg@example.org\r\n\r\nHallo Welt\r\n"
	steps := []struct{ send, want string }{
		// §4: the UTF8 data item only after ENABLE.
		{fmt.Sprintf("a0 APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n", len(msg), msg), "a0 BAD"},
		{"a1 ENABLE UTF8=ACCEPT\r\n", "* ENABLED UTF8=ACCEPT"},
		{"a2 CREATE \"Entwürfe\"\r\n", "a2 OK"},
		{"a3 LIST \"\" \"Entw*\"\r\n", `* LIST (\HasNoChildren) "/" "Entwürfe"`},
		{fmt.Sprintf("a4 APPEND \"Entwürfe\" UTF8 (~{%d+}\r\n%s)\r\n", len(msg), msg), "a4 OK"},
		{"a5 SELECT \"Entwürfe\"\r\n", "* 1 EXISTS"},
		{"a6 FETCH 1 BODY[]\r\n", "Subject: Grüße aus Köln"},
		{"a7 SEARCH SUBJECT \"Grüße\"\r\n", "* SEARCH 1"},
		// §3 with erratum 4029.
		{"a8 SEARCH CHARSET UTF-8 SUBJECT \"Grüße\"\r\n", "a8 BAD"},
		{"a9 SORT (DATE) UTF-8 ALL\r\n", "* SORT 1"},
		{"a10 SORT (DATE) ISO-8859-1 ALL\r\n", "a10 BAD"},
		{"a11 THREAD REFERENCES ISO-8859-1 ALL\r\n", "a11 BAD"},
		{"a12 STATUS INBOX (MESSAGES)\r\n", "* STATUS INBOX (MESSAGES 0)"},
	}
	for _, s := range steps {
		rc.send(s.send)
		tag := strings.Fields(s.send)[0] + " "
		got := strings.Join(rc.until(tag), "\n")
		if !strings.Contains(got, s.want) {
			t.Errorf("%.50q: got\n%s\nwant %q", s.send, got, s.want)
		}
	}
	// Without ENABLE the name stays modified UTF-7 on the wire.
	rc2 := dialRaw(t, ts.addr)
	rc2.send("l LOGIN alice pw-alice\r\nb LIST \"\" \"Entw*\"\r\n")
	rc2.until("l ")
	if got := strings.Join(rc2.until("b "), "\n"); !strings.Contains(got, `"/" Entw&APw-rfe`) {
		t.Errorf("LIST before ENABLE: %q", got)
	}
	if _, err := os.Stat(filepath.Join(ts.dir, "alice", "Maildir", ".Entw&APw-rfe")); err != nil {
		t.Errorf("folder not named in modified UTF-7 on disk: %v", err)
	}
	theirs := dovecotSession(t, []string{`STATUS "Entw&APw-rfe" (MESSAGES)`}, ts.dir)
	if got := strings.Join(theirs[0], "\n"); !strings.Contains(got, "(MESSAGES 1)") {
		t.Errorf("dovecot on the same Maildir: %q", got)
	}
}

// TestUTF8AcceptPython: python3's imaplib enables UTF8=ACCEPT (it then
// sends mailbox names as UTF-8) and creates, lists and selects a
// three-level tree with non-ASCII names.
func TestUTF8AcceptPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is missing: %v", err)
	}
	ts := startServer(t)
	host, port, _ := strings.Cut(ts.addr, ":")
	script := `
import imaplib, sys
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
M.login("alice", "pw-alice")
typ, _ = M.enable("UTF8=ACCEPT")
print("enabled", typ, M.untagged_responses.get("ENABLED"))
print(M.create('"Listen/Débian/Entwickler"'))
typ, data = M.list('""', '"Listen/*"')
for d in data:
    print(d.decode("utf-8"))
print(M.select('"Listen/Débian/Entwickler"'))
M.logout()
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	got := string(out)
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, got)
	}
	for _, want := range []string{
		"enabled OK [b'UTF8=ACCEPT']",
		`(\Noselect \HasChildren) "/" "Listen/Débian"`,
		`(\HasNoChildren) "/" "Listen/Débian/Entwickler"`,
		"('OK', [b'0'])",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("python3 imaplib output lacks %q:\n%s", want, got)
		}
	}
}
