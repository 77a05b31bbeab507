package imap

import (
	"strings"
	"testing"
)

// TestCreateSpecialUse: RFC 6154 §3 on a raw session — the capability,
// the RFC's example (CREATE MySpecialJunk (USE (\Junk))), LIST and LIST
// (SPECIAL-USE) showing the stored use, NO [USEATTR] for a use the server
// cannot give (and no mailbox made), the use following RENAME, kept as
// the /private/specialuse METADATA entry, and gone with DELETE. Debian's
// dovecot 2.3.19 has no CREATE-SPECIAL-USE (it ignores USE), so this is
// not a differential case.
func TestCreateSpecialUse(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	if l := strings.Join(rc.until("l "), "\n"); !strings.Contains(l, " CREATE-SPECIAL-USE") {
		t.Errorf("no CREATE-SPECIAL-USE in the capabilities: %q", l)
	}
	steps := []struct{ send, want, not string }{
		{"a1 CREATE MySpecialJunk (USE (\\Junk))\r\n", "a1 OK", ""},
		// Without RETURN (CHILDREN) an extended LIST carries no child
		// information (RFC 5258 §4 allows either; dovecot sends none).
		{"a2 LIST (SPECIAL-USE) \"\" *\r\n", `* LIST (\Junk) "/" MySpecialJunk`, ""},
		{"a3 LIST \"\" MySpecialJunk\r\n", `* LIST (\Junk \HasNoChildren) "/" MySpecialJunk`, ""},
		{"a4 CREATE Other (USE (\\Important))\r\n", "a4 NO [USEATTR]", ""},
		{"a5 LIST \"\" Other\r\n", "a5 OK", "* LIST"},
		{"a6 CREATE Other (USE (\\Junk \\junk))\r\n", "a6 NO [USEATTR]", ""},
		{"a7 CREATE Other (FOO (\\Junk))\r\n", "a7 BAD", ""},
		{"a8 CREATE Other (USE (\\Sent \\Archive))\r\n", "a8 OK", ""},
		{"a9 LIST \"\" Other\r\n", `* LIST (\Sent \Archive \HasNoChildren) "/" Other`, ""},
		{"b1 CREATE Plain (USE ())\r\n", "b1 OK", ""},
		{"b2 LIST \"\" Plain\r\n", `* LIST (\HasNoChildren) "/" Plain`, ""},
		{"b3 RENAME MySpecialJunk Moved\r\n", "b3 OK", ""},
		{"b4 LIST \"\" *\r\n", `* LIST (\Junk \HasNoChildren) "/" Moved`, "MySpecialJunk"},
		{"b5 GETMETADATA Moved /private/specialuse\r\n", `* METADATA Moved (/private/specialuse {5}`, ""},
		{"b6 DELETE Moved\r\n", "b6 OK", ""},
		{"b7 CREATE Moved\r\n", "b7 OK", ""},
		{"b8 LIST \"\" Moved\r\n", `* LIST (\HasNoChildren) "/" Moved`, ""},
	}
	for _, s := range steps {
		rc.send(s.send)
		tag := strings.Fields(s.send)[0] + " "
		got := strings.Join(rc.until(tag), "\n")
		if !strings.Contains(got, s.want) || (s.not != "" && strings.Contains(got, s.not)) {
			t.Errorf("%s: got %q, want %q (and not %q)", strings.TrimSpace(s.send), got, s.want, s.not)
		}
	}
}
