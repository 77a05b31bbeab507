package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
	"mailmig/mailstore/dovecottest"
	"mailmig/migrate/corpus"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func genTree(t testing.TB, seed uint64, quirks bool) *corpus.Tree {
	t.Helper()
	tree, err := corpus.Generate(t.TempDir(), "alice", corpus.Options{Seed: seed, Folders: 6, InboxMessages: 12, FolderMessages: 6, MaxAttachment: 16 << 10, Quirks: quirks})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func optsFor(tree *corpus.Tree, maildir string) Options {
	return Options{Inbox: tree.Inbox, FoldersDir: tree.FoldersDir, Subscriptions: tree.Subscriptions, Maildir: maildir,
		Location: time.UTC, NoFsync: true, Logger: quietLogger(), Hostname: "test"}
}

// fileState is a source file's checksum and mtime.
type fileState struct {
	sum   string
	mtime time.Time
	size  int64
}

func snapshotFiles(t testing.TB, roots ...string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(p)
			s := sha256.Sum256(b)
			m[p] = fileState{hex.EncodeToString(s[:]), st.ModTime(), st.Size()}
			return nil
		})
	}
	return m
}

// checkStore compares the new store with the corpus through mailstore.
func checkStore(t testing.TB, tree *corpus.Tree, maildir string) {
	t.Helper()
	st, err := mailstore.Open(maildir, mailstore.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range tree.Names() {
		want := tree.Folders[name]
		f, err := st.Folder(name)
		if err != nil {
			t.Errorf("folder %q: %v", name, err)
			continue
		}
		snap, err := f.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want.UIDValidity != 0 && snap.UIDValidity != want.UIDValidity {
			t.Errorf("%q: UIDVALIDITY %d, want %d", name, snap.UIDValidity, want.UIDValidity)
		}
		if len(snap.Messages) != len(want.Messages) {
			t.Errorf("%q: %d messages, want %d", name, len(snap.Messages), len(want.Messages))
			continue
		}
		for i, m := range snap.Messages {
			w := want.Messages[i]
			sum, _, err := sha256File(m.Path)
			if err != nil {
				t.Fatal(err)
			}
			if m.UID != w.UID || flagKey(m.Flags) != strings.Join(w.Flags, " ") || sum != w.SHA256 || !m.InternalDate.Equal(w.Date) {
				t.Errorf("%q message %d: uid %d flags %q date %v; want uid %d flags %q date %v (same bytes: %v)",
					name, i, m.UID, m.Flags, m.InternalDate, w.UID, w.Flags, w.Date, sum == w.SHA256)
			}
		}
	}
}

// checkDovecot asks doveadm for every folder, message and subscription
// and compares with the corpus exactly.
func checkDovecot(t *testing.T, tree *corpus.Tree, maildir string) {
	t.Helper()
	d := dovecottest.New(t, maildir)
	dump, err := d.Dump()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for n := range dump {
		got = append(got, n)
	}
	sort.Strings(got)
	if !reflect.DeepEqual(got, tree.Names()) {
		t.Errorf("dovecot lists folders\n %q\nwant\n %q", got, tree.Names())
	}
	for _, name := range tree.Names() {
		want, have := tree.Folders[name], dump[name]
		if want.UIDValidity != 0 && have.UIDValidity != want.UIDValidity {
			t.Errorf("dovecot %q: UIDVALIDITY %d, want %d", name, have.UIDValidity, want.UIDValidity)
		}
		if len(have.Messages) != len(want.Messages) {
			t.Errorf("dovecot %q: %d messages, want %d", name, len(have.Messages), len(want.Messages))
			continue
		}
		for i, m := range have.Messages {
			w := want.Messages[i]
			flags := append([]string(nil), w.Flags...)
			sort.Strings(flags)
			if m.UID != w.UID || !reflect.DeepEqual(nilIfEmpty(m.Flags), nilIfEmpty(flags)) || !m.Received.Equal(w.Date) ||
				m.SHA256 != hex.EncodeToString(w.SHA256[:]) || m.Size != w.Size {
				t.Errorf("dovecot %q message %d: %+v\nwant uid %d flags %q date %v size %d sha %x", name, i, m, w.UID, flags, w.Date, w.Size, w.SHA256)
			}
		}
		if len(have.Messages) > 0 && have.UIDNext <= have.Messages[len(have.Messages)-1].UID {
			t.Errorf("dovecot %q: UIDNEXT %d not past the last UID", name, have.UIDNext)
		}
	}
	subs, err := d.Subscriptions()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(subs, tree.Subscribed) {
		t.Errorf("dovecot subscriptions\n %q\nwant\n %q", subs, tree.Subscribed)
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestConvertCorpusDovecot converts a quirky corpus and asks dovecot.
func TestConvertCorpusDovecot(t *testing.T) {
	tree := genTree(t, 1, true)
	before := snapshotFiles(t, tree.Inbox, tree.Home)
	maildir := filepath.Join(t.TempDir(), "Maildir")
	rep, err := Run(context.Background(), optsFor(tree, maildir))
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("Run: %v, want ErrPartial for the damaged .gz", err)
	}
	if !strings.Contains(err.Error(), "old.gz at byte 0") || strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("error does not name the file and offset (or names the text file): %v", err)
	}
	if after := snapshotFiles(t, tree.Inbox, tree.Home); !reflect.DeepEqual(before, after) {
		t.Errorf("source files changed")
	}
	var refused bool
	for _, s := range rep.Skipped {
		if s.Path == tree.Refused[0] && strings.Contains(s.Reason, "leaves the folder tree") {
			refused = true
		}
	}
	if !refused {
		t.Errorf("symlink out of the tree not refused: %+v", rep.Skipped)
	}
	// The text file is left behind as not a mail folder: no folder, no
	// renaming, no error.
	var left bool
	for _, s := range rep.Skipped {
		if s.Path == tree.NotMail[0] && s.Reason == NotMailFolder {
			left = true
		}
	}
	if !left {
		t.Errorf("notes.txt not left behind as %q: %+v", NotMailFolder, rep.Skipped)
	}
	for _, f := range rep.Folders {
		if f.Source == tree.NotMail[0] {
			t.Errorf("notes.txt converted: %+v", f)
		}
	}
	for _, r := range rep.RenamingList() {
		if strings.Contains(r.Old, "notes") {
			t.Errorf("notes.txt renamed: %+v", r)
		}
	}
	// The report is JSON and lists the renamings.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Folders) != len(rep.Folders) {
		t.Fatalf("report does not round-trip: %v", err)
	}
	renamed := map[string]string{}
	for _, r := range rep.RenamingList() {
		renamed[r.Old] = r.New
	}
	for old, nw := range map[string]string{"2009.10": "2009_10", ".hidden": "_hidden", "Grün": "Grün_2", "inbox": "inbox_2", "a.b/c.d": "a_b/c_d", "archive.gz": "archive", "ctl\x01name": "ctl_name"} {
		if renamed[old] != nw {
			t.Errorf("renaming %q -> %q missing (have %q)", old, nw, renamed)
		}
	}
	if !rep.Verified {
		t.Errorf("report not verified")
	}
	checkStore(t, tree, maildir)
	checkDovecot(t, tree, maildir)

	// A second run changes nothing and copies nothing.
	rep2, err := Run(context.Background(), optsFor(tree, maildir))
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("second Run: %v", err)
	}
	for _, f := range rep2.Folders {
		if f.Copied != 0 {
			t.Errorf("second run copied %d into %q", f.Copied, f.Name)
		}
	}
	checkStore(t, tree, maildir)
}

func TestDryRunAndSizeLimit(t *testing.T) {
	tree := genTree(t, 2, false)
	maildir := filepath.Join(t.TempDir(), "Maildir")
	o := optsFor(tree, maildir)
	o.DryRun = true
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(maildir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dry run wrote %s", maildir)
	}
	if len(rep.Folders) != len(tree.Folders) || rep.FolderBytes == 0 || rep.InboxBytes == 0 {
		t.Errorf("dry run report: %+v", rep)
	}
	o.DryRun = false
	o.MaxFolderBytes = rep.FolderBytes - 1
	rep, err = Run(context.Background(), o)
	if !errors.Is(err, ErrTooBig) || !rep.TooBig {
		t.Fatalf("Run over the limit: %v", err)
	}
	// INBOX was copied; the folders were not.
	st, err := mailstore.Open(maildir, mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	infos, _ := st.Folders()
	if len(infos) != 1 || infos[0].Name != "INBOX" {
		t.Errorf("folders after ErrTooBig: %+v", infos)
	}
	if rep.Folders[0].Messages != len(tree.Folders["INBOX"].Messages) {
		t.Errorf("INBOX: %d messages, want %d", rep.Folders[0].Messages, len(tree.Folders["INBOX"].Messages))
	}
}

// TestVerifyDetectsDamage changes a stored message behind the
// converter's back; the next run must fail verification.
func TestVerifyDetectsDamage(t *testing.T) {
	tree := genTree(t, 3, false)
	maildir := filepath.Join(t.TempDir(), "Maildir")
	if _, err := Run(context.Background(), optsFor(tree, maildir)); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(maildir, "cur", "*"))
	if len(files) == 0 {
		t.Fatal("no files")
	}
	b, _ := os.ReadFile(files[0])
	b[len(b)-2] ^= 1
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), optsFor(tree, maildir))
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("Run after damage: %v, want ErrVerify", err)
	}
}

// TestTooManyKeywords: c-client allowed 30 keywords per folder, Maildir
// 26; the rest are dropped and reported, the folder still converts.
func TestTooManyKeywords(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	var declared []string // c-client shows only keywords X-IMAPbase declares (30 at most)
	for i := 0; i < 30; i++ {
		declared = append(declared, fmt.Sprintf("kw%02d", i))
	}
	for i := 0; i < 30; i++ {
		base := ""
		if i == 0 {
			base = "X-IMAPbase: 1 30 " + strings.Join(declared, " ") + "\n"
		}
		fmt.Fprintf(&b, "From a Wed Oct  7 12:00:00 2009\n%sX-UID: %d\nX-Keywords: kw%02d\nSubject: %d\n\nbody\n\n", base, i+1, i, i)
	}
	inbox := filepath.Join(dir, "inbox")
	if err := os.WriteFile(inbox, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	maildir := filepath.Join(dir, "Maildir")
	rep, err := Run(context.Background(), Options{Inbox: inbox, Maildir: maildir, Location: time.UTC, NoFsync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	in := rep.Folders[0]
	if in.Messages != 30 || len(in.Skipped) != 4 || !strings.Contains(in.Skipped[0].Reason, `"kw26" dropped`) {
		t.Fatalf("report: %d messages, skipped %+v", in.Messages, in.Skipped)
	}
	d := dovecottest.New(t, maildir)
	msgs, err := d.Messages("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 30 || !reflect.DeepEqual(msgs[25].Flags, []string{"kw25"}) || msgs[26].Flags != nil {
		t.Errorf("dovecot: %d messages, 26th %v, 27th %v", len(msgs), msgs[25].Flags, msgs[26].Flags)
	}
}

// sha256File returns the SHA-256 and size of the file at path (the
// corpus describes messages by SHA-256).
func sha256File(path string) ([32]byte, int64, error) {
	var s [32]byte
	data, err := os.ReadFile(path)
	if err != nil {
		return s, 0, err
	}
	return sha256.Sum256(data), int64(len(data)), nil
}
