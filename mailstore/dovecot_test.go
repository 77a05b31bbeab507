package mailstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
	"mailmig/mailstore/dovecottest"
)

// compareWithDovecot checks that doveadm lists exactly what our snapshot
// of every folder holds: UIDVALIDITY, UIDNEXT, UIDs, flags, keywords,
// internal dates, sizes and bytes.
func compareWithDovecot(t *testing.T, s *mailstore.Store, d *dovecottest.Doveadm) {
	t.Helper()
	dump, err := d.Dump()
	if err != nil {
		t.Fatalf("doveadm: %v", err)
	}
	folders, err := s.Folders()
	if err != nil {
		t.Fatal(err)
	}
	if len(dump) != len(folders) {
		t.Fatalf("doveadm lists %d folders, we %d: %v", len(dump), len(folders), keys(dump))
	}
	for _, fi := range folders {
		f, err := s.Folder(fi.Name)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := f.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		dv, ok := dump[fi.Name]
		if !ok {
			t.Fatalf("doveadm does not list %q (lists %v)", fi.Name, keys(dump))
		}
		if dv.UIDValidity != snap.UIDValidity || dv.UIDNext != snap.UIDNext || len(dv.Messages) != len(snap.Messages) {
			t.Fatalf("%s: doveadm V%d N%d %d msgs; we V%d N%d %d msgs", fi.Name, dv.UIDValidity, dv.UIDNext, len(dv.Messages),
				snap.UIDValidity, snap.UIDNext, len(snap.Messages))
		}
		for i, m := range snap.Messages {
			dm := dv.Messages[i]
			want := append([]string(nil), m.Flags...)
			sort.Strings(want)
			got := append([]string(nil), dm.Flags...)
			sort.Strings(got)
			if dm.UID != m.UID || !reflect.DeepEqual(norm(got), norm(want)) || !dm.Received.Equal(m.InternalDate.Truncate(time.Second)) ||
				dm.Size != m.Size || dm.VSize != m.VSize || dm.GUID != m.Key {
				t.Fatalf("%s: doveadm %+v\nwe %+v", fi.Name, dm, m)
			}
			if dm.SHA256 != fileSum(t, f, m.UID) {
				t.Fatalf("%s uid %d: bytes differ", fi.Name, m.UID)
			}
		}
	}
	subs, err := s.Subscriptions()
	if err != nil {
		t.Fatal(err)
	}
	dsubs, err := d.Subscriptions()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(subs)
	if !reflect.DeepEqual(norm(subs), norm(dsubs)) {
		t.Fatalf("subscriptions: doveadm %q, we %q", dsubs, subs)
	}
}

func norm(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func keys(m map[string]dovecottest.Folder) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func fileSum(t *testing.T, f *mailstore.Folder, uid uint32) string {
	t.Helper()
	fh, err := f.Open(uid)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestDovecotReadsWhatWeWrite writes a tree through every kind of change
// and asks doveadm what it holds.
func TestDovecotReadsWhatWeWrite(t *testing.T) {
	dovecottest.Require(t)
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	d := dovecottest.New(t, root)
	s, err := mailstore.Open(root, mailstore.Options{CreateRoot: true, Hub: mailstore.NewHub(), QuotaBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)
	bodies := []string{
		"From: a@example.org\nSubject: lf\n\nbody\n",
		"From: b@example.org\r\nSubject: crlf\r\n\r\nbody\r\n",
		"Subject: kw\n\nno newline at end",
	}
	flags := [][]string{nil, {`\Seen`, `\Answered`}, {"$Label1", "Junk", `\Flagged`}}
	for i, b := range bodies {
		if _, err := in.Append(ctx, strings.NewReader(b), flags[i], d1.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"Sent", "a/b", "Grüße", "Tom & Jerry"} {
		if err := s.CreateFolder(n); err != nil {
			t.Fatal(err)
		}
	}
	ab, _ := s.Folder("a/b")
	if _, err := in.Copy(ctx, []uint32{1, 3}, ab); err != nil {
		t.Fatal(err)
	}
	if _, err := in.StoreFlags(ctx, []uint32{1}, mailstore.FlagAdd, []string{`\Draft`, "$Forwarded"}); err != nil {
		t.Fatal(err)
	}
	gr, _ := s.Folder("Grüße")
	if _, err := in.Move(ctx, []uint32{2}, gr); err != nil {
		t.Fatal(err)
	}
	if _, err := ab.Expunge(ctx, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	im, err := s.Importer("Old/Mail", 1234567890)
	if err != nil {
		t.Fatal(err)
	}
	for i, uid := range []uint32{5, 9, 12} {
		b := bodies[i]
		if err := im.Add(ctx, strings.NewReader(b), int64(len(b)), uid, flags[i], d1.Add(-time.Duration(i)*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	im.SetUIDNext(20)
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"INBOX", "a/b", "Grüße", "gone/away"} {
		if err := s.Subscribe(n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.ClaimRecent(ctx); err != nil {
		t.Fatal(err)
	}
	compareWithDovecot(t, s, d)

	st, err := d.Status("Old/Mail")
	if err != nil || st.UIDValidity != 1234567890 || st.UIDNext != 20 || st.Messages != 3 {
		t.Fatalf("Old/Mail status %+v, %v", st, err)
	}
	msgs, err := d.Messages("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{`$Forwarded`, `\Draft`}, {"$Label1", "Junk", `\Flagged`}}
	for i, m := range msgs {
		got := append([]string(nil), m.Flags...)
		sort.Strings(got)
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("INBOX uid %d flags %v, want %v", m.UID, got, want[i])
		}
	}
	// After dovecot looked (and possibly touched files), we still agree.
	compareWithDovecot(t, s, d)
}

// TestWeReadWhatDovecotWrites lets doveadm deliver, flag and expunge, and
// checks that our snapshot matches, and that our later appends continue
// dovecot's UIDs.
func TestWeReadWhatDovecotWrites(t *testing.T) {
	dovecottest.Require(t)
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	d := dovecottest.New(t, root)
	if _, err := d.Run("mailbox", "create", "Work/Notes", "Grüße"); err != nil {
		t.Fatal(err)
	}
	save := func(folder, body string) {
		t.Helper()
		if _, err := d.Run("mailbox", "status", "messages", folder); err != nil { // chowns the tree for dovecot
			t.Fatal(err)
		}
		cmd := exec.Command(d.Bin, "-c", d.ConfigPath(), "save", "-m", folder)
		cmd.Env = d.Env()
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("doveadm save: %v\n%s", err, out)
		}
	}
	for i := 0; i < 3; i++ {
		save("INBOX", "Subject: dovecot "+string(rune('a'+i))+"\n\nbody\n")
	}
	save("Work/Notes", "Subject: note\n\nx\n")
	for _, args := range [][]string{
		{"flags", "add", `\Seen $Label1 custom`, "mailbox", "INBOX", "uid", "2"},
		{"flags", "add", `\Deleted`, "mailbox", "INBOX", "uid", "3"},
		{"expunge", "mailbox", "INBOX", "uid", "3"},
		{"mailbox", "subscribe", "Work/Notes", "Grüße"},
	} {
		if _, err := d.Run(args...); err != nil {
			t.Fatal(err)
		}
	}
	s, err := mailstore.Open(root, mailstore.Options{Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	compareWithDovecot(t, s, d)
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	uid, err := in.Append(ctx, strings.NewReader("Subject: ours\n\n"), []string{"custom", "ours"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if uid != 4 {
		t.Fatalf("our append after dovecot's 3 (one expunged) got UID %d, want 4", uid)
	}
	if _, err := in.StoreFlags(ctx, []uint32{2}, mailstore.FlagRemove, []string{"$Label1"}); err != nil {
		t.Fatal(err)
	}
	compareWithDovecot(t, s, d)
	// Dovecot delivers again: it must continue after our UID.
	save("INBOX", "Subject: dovecot again\n\n")
	snap, err := in.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := snap.Messages[len(snap.Messages)-1]; last.UID != 5 {
		t.Fatalf("dovecot's next delivery got UID %d, want 5", last.UID)
	}
	compareWithDovecot(t, s, d)
	if _, err := os.Stat(filepath.Join(root, "dovecot-uidlist.lock")); err == nil {
		t.Fatal("lock file left behind")
	}
}

// TestDovecotHonoursOurLock: while mailmig holds dovecot-uidlist.lock,
// dovecot's delivery does not touch the uidlist (doveadm save puts the
// file into new/ and leaves the UID for the next sync, as verified with
// dovecot 2.3.19), and the file gets the next UID once the lock is gone.
func TestDovecotHonoursOurLock(t *testing.T) {
	dovecottest.Require(t)
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	d := dovecottest.New(t, root)
	s, err := mailstore.Open(root, mailstore.Options{CreateRoot: true, NoFsync: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Append(ctx, strings.NewReader("Subject: ours\n\n"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Status("INBOX"); err != nil { // hands the tree to dovecot's user
		t.Fatal(err)
	}
	uidlist := filepath.Join(root, "dovecot-uidlist")
	before, err := os.ReadFile(uidlist)
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(root, "dovecot-uidlist.lock")
	if err := os.WriteFile(lock, []byte("mailmig:1:elsewhere\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(d.Bin, "-c", d.ConfigPath(), "save", "-m", "INBOX")
	cmd.Env = d.Env()
	cmd.Stdin = strings.NewReader("Subject: dovecot's\n\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("doveadm save: %v\n%s", err, out)
	}
	during, err := os.ReadFile(uidlist)
	if err != nil {
		t.Fatal(err)
	}
	if string(during) != string(before) {
		t.Fatalf("dovecot changed the uidlist behind our lock:\n%s", during)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("dovecot removed our lock: %v", err)
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	snap, err := in.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Messages) != 2 || snap.Messages[1].UID != 2 {
		t.Fatalf("after dovecot's delivery: %+v", snap.Messages)
	}
	compareWithDovecot(t, s, d)
}
