package delivery

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"mailmig/mailstore/dovecottest"
)

// TestFileintoCreateWritesMailboxGUID: a folder Sieve's fileinto :create
// makes has its mailbox GUID (IMAP MAILBOXID, RFC 8474 §4; docs/imap.md
// "OBJECTID") in the dovecot-uidlist the delivery wrote, before any
// other reader opens the tree, and Debian's doveadm reports that GUID.
func TestFileintoCreateWritesMailboxGUID(t *testing.T) {
	f := newFixture(t)
	f.script("alice", `require ["fileinto", "mailbox"]; fileinto :create "Lists/Debian";`)
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	maildir := filepath.Join(f.root, "alice", "Maildir")
	b, err := os.ReadFile(filepath.Join(maildir, ".Lists.Debian", "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^3 V\d+ N\d+ G([0-9a-f]{32})\n`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no mailbox GUID in the uidlist fileinto :create wrote: %q", b)
	}
	out, err := dovecottest.New(t, maildir).Run("-f", "json", "mailbox", "status", "guid", "Lists/Debian")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(out, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("%v: %s", err, out)
	}
	if rows[0]["guid"] != string(m[1]) {
		t.Errorf("dovecot says %q, uidlist %q", rows[0]["guid"], m[1])
	}
}
