package convert

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"mailmig/mailstore"
	"mailmig/mailstore/dovecottest"
)

var uidlistGUIDRE = regexp.MustCompile(`^3 V\d+ N\d+ G([0-9a-f]{32})\n`)

// TestConvertWritesMailboxGUID: every folder the converter writes has its
// mailbox GUID (IMAP MAILBOXID, RFC 8474 §4; docs/imap.md "OBJECTID") in
// the dovecot-uidlist it commits, before anything else opens the tree,
// each folder its own, and Debian's doveadm reports the same GUIDs.
func TestConvertWritesMailboxGUID(t *testing.T) {
	tree := genTree(t, 3, false)
	maildir := filepath.Join(t.TempDir(), "Maildir")
	if _, err := Run(context.Background(), optsFor(tree, maildir)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	ours := map[string]string{}
	for _, name := range tree.Names() {
		dir := maildir
		if name != "INBOX" {
			enc, err := mailstore.EncodeFolderName(name)
			if err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(maildir, enc)
		}
		b, err := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := uidlistGUIDRE.FindSubmatch(b)
		if m == nil {
			t.Errorf("%s: no mailbox GUID in the uidlist header %q", name, b[:min(len(b), 80)])
			continue
		}
		ours[name] = string(m[1])
	}
	out, err := dovecottest.New(t, maildir).Run("-f", "json", "mailbox", "status", "guid", "*")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	seen := map[string]string{}
	for _, r := range rows {
		n, g := r["mailbox"], r["guid"]
		if ours[n] != g {
			t.Errorf("%s: converter wrote %q, dovecot says %q", n, ours[n], g)
		}
		if o, ok := seen[g]; ok {
			t.Errorf("%s and %s share %s", n, o, g)
		}
		seen[g] = n
	}
	if len(rows) != len(tree.Names()) {
		t.Errorf("dovecot lists %d folders, converted %d", len(rows), len(tree.Names()))
	}
}
