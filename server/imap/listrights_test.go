package imap

import (
	"strings"
	"testing"
)

// TestListMyRights: LIST ... RETURN (MYRIGHTS) (RFC 8440 §3) follows each
// selectable mailbox with the MYRIGHTS response the MYRIGHTS command
// gives, and \Noselect levels with none.
func TestListMyRights(t *testing.T) {
	ts := startServer(t)
	bob := dialRaw(t, ts.addr)
	bob.send("l LOGIN bob pw-bob\r\nc CREATE Team\r\na SETACL Team alice lrs\r\n")
	bob.until("a OK")
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\nc CREATE a/b\r\n")
	rc.until("c OK")
	rc.send("x LIST \"\" * RETURN (MYRIGHTS)\r\n")
	got := map[string]string{}
	var order []string
	for _, l := range rc.until("x ") {
		if strings.HasPrefix(l, "* MYRIGHTS ") {
			f := strings.Fields(l)
			got[strings.Trim(f[2], `"`)] = f[3]
		}
		order = append(order, l)
	}
	if !strings.HasPrefix(order[len(order)-1], "x OK") {
		t.Fatalf("LIST: %v", order)
	}
	for name := range map[string]bool{"INBOX": true, "a/b": true, "shared/bob/Team": true} {
		rc.send("m MYRIGHTS " + quoteName(name) + "\r\n")
		lines := rc.until("m ")
		f := strings.Fields(lines[0])
		if len(f) < 4 || got[name] != f[3] {
			t.Errorf("%s: LIST says %q, MYRIGHTS %v", name, got[name], lines)
		}
	}
	if got["shared/bob/Team"] != "lrs" {
		t.Errorf("shared/bob/Team rights %q, want lrs", got["shared/bob/Team"])
	}
	if _, ok := got["a"]; ok {
		t.Errorf("\\Noselect a got MYRIGHTS: %v", order)
	}
	// The MYRIGHTS response follows its LIST response.
	for i, l := range order {
		if strings.HasPrefix(l, "* MYRIGHTS ") && (i == 0 || !strings.HasPrefix(order[i-1], "* LIST ")) {
			t.Errorf("MYRIGHTS not after its LIST: %v", order)
		}
	}
}

func quoteName(s string) string { return `"` + s + `"` }
