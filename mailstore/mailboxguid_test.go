package mailstore_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/mailstore"
	"mailmig/mailstore/dovecottest"
)

var uidlistGUIDRE = regexp.MustCompile(`^3 V\d+ N\d+ G([0-9a-f]{32})\n`)

// headerGUID returns the G field of a folder's dovecot-uidlist header as
// written on disk ("" if none).
func headerGUID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	m := uidlistGUIDRE.FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func mailboxGUID(t *testing.T, s *mailstore.Store, name string) string {
	t.Helper()
	f, err := s.Folder(name)
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.MailboxGUID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// dovecotGUIDs asks doveadm for every folder's mailbox GUID.
func dovecotGUIDs(t *testing.T, d *dovecottest.Doveadm) map[string]string {
	t.Helper()
	out, err := d.Run("-f", "json", "mailbox", "status", "guid", "*")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m := map[string]string{}
	for _, r := range rows {
		m[r["mailbox"]] = r["guid"]
	}
	return m
}

// TestMailboxGUIDDovecot: the mailbox GUID (IMAP MAILBOXID, RFC 8474 §4)
// is written with the first uidlist by every path that makes a folder
// (CreateFolder, as IMAP CREATE and Sieve fileinto :create use it; the
// converter's Importer), moves with a rename of a folder and its
// children, is new after delete + create, is taken from a uidlist
// dovecot wrote, and is added to a uidlist without one by one rewrite
// that independent stores (as separate processes) racing for it agree
// on. Debian's doveadm, reading the same tree, reports the same GUID for
// every folder and logs no warning about any file.
func TestMailboxGUIDDovecot(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	open := func() *mailstore.Store {
		s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub(), LockTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	for _, n := range []string{"a", "a/b", "gone"} {
		if err := s.CreateFolder(n); err != nil {
			t.Fatal(err)
		}
	}
	im, err := s.Importer("conv/x", 1234)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Add(ctx, strings.NewReader("Subject: hi\n\nx\n"), 15, 7, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	// Written by the paths that made the folders, not on first use.
	for _, dir := range []string{".a", ".a.b", ".gone", ".conv.x"} {
		if headerGUID(t, filepath.Join(root, dir)) == "" {
			t.Errorf("%s: no mailbox GUID in dovecot-uidlist after it was made", dir)
		}
	}
	a, ab, gone := mailboxGUID(t, s, "a"), mailboxGUID(t, s, "a/b"), mailboxGUID(t, s, "gone")
	if err := s.RenameFolder("a", "r"); err != nil {
		t.Fatal(err)
	}
	if g := mailboxGUID(t, s, "r"); g != a {
		t.Errorf("renamed a: %s, was %s", g, a)
	}
	if g := mailboxGUID(t, s, "r/b"); g != ab {
		t.Errorf("renamed a/b: %s, was %s", g, ab)
	}
	if err := s.DeleteFolder("gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFolder("gone"); err != nil {
		t.Fatal(err)
	}
	if g := mailboxGUID(t, s, "gone"); g == gone {
		t.Errorf("deleted and created again: same GUID %s", g)
	}

	d := dovecottest.New(t, root)
	// A folder dovecot made: its GUID is dovecot's.
	if _, err := d.Run("mailbox", "create", "dv"); err != nil {
		t.Fatal(err)
	}
	theirs := dovecotGUIDs(t, d)
	if g := mailboxGUID(t, s, "dv"); g != theirs["dv"] || g == "" {
		t.Errorf("dovecot's folder dv: %q, dovecot says %q", g, theirs["dv"])
	}

	// A uidlist without G (written by an old dovecot): several stores
	// race to add one.
	if err := s.CreateFolder("old"); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(root, ".old")
	if err := os.WriteFile(filepath.Join(old, "new", "1700000000.M1P1.host"), []byte("Subject: old\n\nx\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "dovecot-uidlist"), []byte("3 V1700000000 N2\n1 :1700000000.M1P1.host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const racers = 6
	got := make([]string, racers)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := open()
			defer st.Close()
			f, err := st.Folder("old")
			if err != nil {
				t.Error(err)
				return
			}
			got[i], err = f.MailboxGUID(ctx)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, g := range got[1:] {
		if g != got[0] {
			t.Fatalf("racing stores disagree: %v", got)
		}
	}
	if h := headerGUID(t, old); h != got[0] {
		t.Errorf("uidlist header G %q, stores said %q", h, got[0])
	}
	if b, _ := os.ReadFile(filepath.Join(old, "dovecot-uidlist")); !strings.Contains(string(b), "1 :1700000000.M1P1.host\n") || !strings.HasPrefix(string(b), "3 V1700000000 ") {
		t.Errorf("rewrite lost the UIDVALIDITY or a UID:\n%s", b)
	}

	// dovecot agrees on every folder (and logged nothing: d.Run fails on
	// any warning).
	theirs = dovecotGUIDs(t, d)
	s2 := open()
	for _, n := range []string{"INBOX", "r", "r/b", "gone", "conv/x", "dv", "old"} {
		if g := mailboxGUID(t, s2, n); g != theirs[n] {
			t.Errorf("%s: mailmig %q, dovecot %q", n, g, theirs[n])
		}
	}
	seen := map[string]string{}
	for n, g := range theirs {
		if o, ok := seen[g]; ok {
			t.Errorf("%s and %s share GUID %s", n, o, g)
		}
		seen[g] = n
	}
}
