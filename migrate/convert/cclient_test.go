package convert

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore/dovecottest"
	"mailmig/migrate/cclienttest"
	"mailmig/migrate/corpus"
	"mailmig/migrate/mbox"
	"mailmig/migrate/mbx"
	"mailmig/migrate/mix"
)

// realworldDir is ../shared/realworld-mbox (cclienttest.RealworldDir).
func realworldDir(t testing.TB) string { return cclienttest.RealworldDir(t) }

// copyKeepTime copies a file, keeping its mtime (UIDVALIDITY and MMDF
// dates may depend on it).
func copyKeepTime(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dst, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// cclientView is what c-client reads for a source file; a .gz file is
// read decompressed (c-client has no gzip driver; mailmig reads .gz).
func cclientView(t *testing.T, path string) *cclienttest.Folder {
	t.Helper()
	if !strings.HasSuffix(path, ".gz") {
		return cclienttest.Dump(t, path)
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(path), ".gz"))
	out, err := os.Create(plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	out.Close()
	st, _ := os.Stat(path)
	os.Chtimes(plain, st.ModTime(), st.ModTime())
	return cclienttest.Dump(t, plain)
}

// compareWithCclient converts every file of srcDir as a folder of one user
// and compares each converted folder, read back through doveadm, with what
// c-client reads from the same file: every message's UID, flags, keywords,
// internal date and bytes, and UIDVALIDITY when the file carries one.
// Files c-client does not read as a mailbox (its "phile" driver) must be
// left behind as not a mail folder.
func compareWithCclient(t *testing.T, srcDir string) {
	dir := t.TempDir()
	folders := filepath.Join(dir, "mail")
	if err := os.MkdirAll(folders, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range ents {
		if e.Name() == "SOURCES.md" || !e.Type().IsRegular() && !e.IsDir() {
			continue
		}
		// (a directory is a mix folder)
		if err := cclienttest.CopyTree(filepath.Join(srcDir, e.Name()), filepath.Join(folders, e.Name())); err != nil {
			t.Fatal(err)
		}
		files = append(files, e.Name())
	}
	sort.Strings(files)
	before := snapshotFiles(t, folders)
	maildir := filepath.Join(dir, "Maildir")
	opts := Options{FoldersDir: folders, Maildir: maildir, Location: time.UTC, NoFsync: true, Logger: quietLogger(), Hostname: "test"}
	rep, runErr := Run(context.Background(), opts)
	if rep == nil {
		t.Fatalf("convert: %v", runErr)
	}
	if after := snapshotFiles(t, folders); !equalSnapshots(before, after) {
		t.Errorf("the conversion changed its sources")
	}
	byPath := map[string]FolderReport{}
	for _, f := range rep.Folders {
		byPath[f.Source] = f
	}
	leftBehind := map[string]string{}
	for _, s := range rep.Skipped {
		leftBehind[s.Path] = s.Reason
	}
	d := dovecottest.New(t, maildir)
	var total, same int
	for _, name := range files {
		path := filepath.Join(folders, name)
		want := cclientView(t, path)
		fr, converted := byPath[path]
		if want.Driver == "phile" {
			if converted && fr.Error == "" {
				t.Errorf("%s: c-client does not read it as a mailbox, but it was converted to %q", name, fr.Name)
			}
			if !strings.Contains(leftBehind[path], NotMailFolder) {
				t.Errorf("%s: not a mailbox for c-client; want it left behind as %q, report says %q", name, NotMailFolder, leftBehind[path])
			}
			continue
		}
		total += len(want.Messages)
		if !converted || fr.Error != "" {
			t.Errorf("%s: c-client reads %d messages (%s driver); not converted: %q %q", name, len(want.Messages), want.Driver, fr.Error, leftBehind[path])
			continue
		}
		msgs, texts, err := d.Texts(fr.Name)
		if err != nil {
			t.Errorf("%s: doveadm: %v", name, err)
			continue
		}
		got := make([]cclienttest.Got, len(msgs))
		for i, m := range msgs {
			got[i] = cclienttest.Got{UID: m.UID, Flags: m.Flags, Date: m.Received, Text: texts[m.UID]}
		}
		diffs := cclienttest.Diff(want, got)
		// Without a valid X-IMAP/X-IMAPbase c-client makes a UIDVALIDITY
		// up at each open (and says so).
		// (an empty file, c-client's dummy driver, has none either).
		if want.Driver != "dummy" && !strings.Contains(want.Log, "Assigning new unique identifiers") && fr.UIDValidity != want.UIDValidity {
			diffs = append(diffs, fmt.Sprintf("UIDVALIDITY %d, c-client %d", fr.UIDValidity, want.UIDValidity))
		}
		for _, df := range diffs {
			t.Errorf("%s: %s", name, df)
		}
		if len(diffs) == 0 {
			same += len(want.Messages)
		}
	}
	t.Logf("%d files, %d messages as c-client reads them, %d in files identical to c-client's view", len(files), total, same)
}

func equalSnapshots(a, b map[string]fileState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRealworldAsCclient: every file of ../shared/realworld-mbox, judged by
// c-client.
func TestRealworldAsCclient(t *testing.T) {
	compareWithCclient(t, realworldDir(t))
}

// TestCorpusAsCclient: the generated quirky corpus (pseudo-messages,
// X-IMAPbase, bad X-UIDs, CRLF, .gz, a text file), every file judged by
// c-client.
func TestCorpusAsCclient(t *testing.T) {
	tree := genTree(t, 5, true)
	broken := map[string]bool{}
	for _, b := range tree.Broken {
		broken[b] = true
	}
	flat := t.TempDir()
	var files []string
	if tree.Inbox != "" {
		files = append(files, tree.Inbox)
	}
	err := filepath.WalkDir(tree.FoldersDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !broken[p] {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range files {
		// Plain names: c-client's mailbox names must not carry the
		// corpus's control characters.
		name := fmt.Sprintf("f%02d", i)
		if strings.HasSuffix(p, ".gz") {
			name += ".gz"
		}
		copyKeepTime(t, p, filepath.Join(flat, name))
	}
	compareWithCclient(t, flat)
}

// sampleFolders collects the real-world files and a quirky corpus that
// c-client reads as mailboxes (unix or mmdf) into one directory.
func sampleFolders(t *testing.T) string {
	dir := t.TempDir()
	rw := realworldDir(t)
	ents, err := os.ReadDir(rw)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	add := func(p string) {
		v := cclienttest.Dump(t, p)
		if v.Driver != "unix" && v.Driver != "mmdf" || len(v.Messages) == 0 {
			return
		}
		for _, m := range v.Messages {
			if len(m.Text) == 0 {
				return // c-client cannot append an empty message to mbx or mix
			}
		}
		copyKeepTime(t, p, filepath.Join(dir, fmt.Sprintf("f%02d", i)))
		i++
	}
	for _, e := range ents {
		if e.Type().IsRegular() && e.Name() != "SOURCES.md" && !strings.HasSuffix(e.Name(), ".gz") {
			add(filepath.Join(rw, e.Name()))
		}
	}
	tree := genTree(t, 9, true)
	filepath.WalkDir(tree.FoldersDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".gz") {
			add(p)
		}
		return nil
	})
	add(tree.Inbox)
	return dir
}

// TestMbxAsCclient: folders in UW-IMAP's mbx format, made by c-client
// itself (mailutil copy of the sample folders, flags from their Status
// headers; keywords and flags set through c-client on every other folder,
// which also makes c-client write UIDs into the file), converted and
// compared with c-client's view of them.
func TestMbxAsCclient(t *testing.T) {
	src := sampleFolders(t)
	out := t.TempDir()
	ents, _ := os.ReadDir(src)
	for i, e := range ents {
		dst := filepath.Join(out, e.Name())
		cclienttest.Mailutil(t, "copy", filepath.Join(src, e.Name()), "#driver.mbx/"+dst)
		if i%2 == 0 {
			cclienttest.SetFlag(t, dst, "", "1", `\Flagged Work $Label1`)
			cclienttest.SetFlag(t, dst, "", "1:*", `\Draft Todo`)
		}
		if v := cclienttest.Dump(t, dst); v.Driver != "mbx" {
			t.Fatalf("%s: c-client reads the copy with its %s driver, want mbx", e.Name(), v.Driver)
		}
	}
	compareWithCclient(t, out)
}

// TestMbxInboxAsCclient: an INBOX spool in mbx format (UW-IMAP sites kept
// shared INBOXes so), through Prepare and Run, as c-client reads it.
func TestMbxInboxAsCclient(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	copyKeepTime(t, filepath.Join(realworldDir(t), "mu__teaparty.mbox"), src)
	inbox := filepath.Join(dir, "spool") // not "inbox": c-client's name for the system INBOX
	cclienttest.Mailutil(t, "copy", src, "#driver.mbx/"+inbox)
	cclienttest.SetFlag(t, inbox, "", "2:5", `\Seen Work`)
	want := cclienttest.Dump(t, inbox)
	maildir := filepath.Join(dir, "Maildir")
	opts := Options{Inbox: inbox, Maildir: maildir, Location: time.UTC, NoFsync: true, Logger: quietLogger(), Hostname: "test"}
	if _, err := Prepare(context.Background(), opts); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Folders[0].UIDValidity != want.UIDValidity || rep.Folders[0].UIDNext != want.UIDNext {
		t.Errorf("UIDVALIDITY %d UIDNEXT %d, c-client %d %d", rep.Folders[0].UIDValidity, rep.Folders[0].UIDNext, want.UIDValidity, want.UIDNext)
	}
	msgs, texts, err := dovecottest.New(t, maildir).Texts("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]cclienttest.Got, len(msgs))
	for i, m := range msgs {
		got[i] = cclienttest.Got{UID: m.UID, Flags: m.Flags, Date: m.Received, Text: texts[m.UID]}
	}
	for _, d := range cclienttest.Diff(want, got) {
		t.Error(d)
	}
	if len(want.Messages) != 95 {
		t.Errorf("c-client reads %d messages, want 95", len(want.Messages))
	}
}

// TestMixAsCclient: the same for c-client's mix format (imap-2006+): a
// directory with .mixmeta, .mixindex, .mixstatus and data files, made by
// mailutil copy, keywords and flags set through c-client, some messages
// expunged by c-client (gone from the index, bytes left in the data file).
func TestMixAsCclient(t *testing.T) {
	src := sampleFolders(t)
	out := t.TempDir()
	ents, _ := os.ReadDir(src)
	for i, e := range ents {
		dst := filepath.Join(out, e.Name())
		cclienttest.Mailutil(t, "copy", filepath.Join(src, e.Name()), "#driver.mix/"+dst)
		if i%2 == 0 {
			cclienttest.SetFlag(t, dst, "", "1", `\Flagged Work $Label1`)
			cclienttest.SetFlag(t, dst, "", "1:*", `\Answered Todo`)
		}
		if i%3 == 0 {
			cclienttest.SetFlag(t, dst, "", "1", `\Deleted`)
			cclienttest.Expunge(t, dst)
		}
		if v := cclienttest.Dump(t, dst); v.Driver != "mix" {
			t.Fatalf("%s: c-client reads the copy with its %s driver, want mix", e.Name(), v.Driver)
		}
	}
	compareWithCclient(t, out)
}

// TestDamagedFormatsNotHalfWritten: an mbx whose last message is cut and
// a mix folder whose data file is cut fail with the file and byte offset,
// and leave no folder behind (nothing half-written); the intact folder
// beside them converts.
func TestDamagedFormatsNotHalfWritten(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	copyKeepTime(t, filepath.Join(realworldDir(t), "mu__teaparty.mbox"), src)
	folders := filepath.Join(dir, "mail")
	os.MkdirAll(folders, 0o755)
	cclienttest.Mailutil(t, "copy", src, "#driver.mbx/"+filepath.Join(folders, "box"))
	cclienttest.Mailutil(t, "copy", src, "#driver.mix/"+filepath.Join(folders, "mixed"))
	cclienttest.Mailutil(t, "copy", src, "#driver.mbx/"+filepath.Join(folders, "intact"))
	box := filepath.Join(folders, "box")
	st, _ := os.Stat(box)
	if err := os.Truncate(box, st.Size()-100); err != nil {
		t.Fatal(err)
	}
	data, _ := filepath.Glob(filepath.Join(folders, "mixed", ".mix[0-9a-f]*"))
	if len(data) != 1 {
		t.Fatalf("mix data files %v", data)
	}
	st, _ = os.Stat(data[0])
	if err := os.Truncate(data[0], st.Size()-100); err != nil {
		t.Fatal(err)
	}
	maildir := filepath.Join(dir, "Maildir")
	rep, err := Run(context.Background(), Options{FoldersDir: folders, Maildir: maildir, Location: time.UTC, NoFsync: true, Logger: quietLogger(), Hostname: "test"})
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("Run: %v, want ErrPartial", err)
	}
	for _, want := range []string{box + " at byte ", data[0] + " at byte "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	sts, err := dovecottest.New(t, maildir).Folders()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sts {
		names = append(names, s.Name)
	}
	if strings.Join(names, " ") != "INBOX intact" {
		t.Errorf("dovecot lists %q, want only INBOX and intact", names)
	}
	if rep.Messages != 95 {
		t.Errorf("%d messages converted, want the 95 of intact", rep.Messages)
	}
}

// BenchmarkReadFormats reads the same generated folder as mbox, mbx and
// mix (the latter two made by c-client), every byte of every message;
// MB/s are of the mbox file's size for all three (go test -run XXX
// -bench ReadFormats ./migrate/convert).
func BenchmarkReadFormats(b *testing.B) {
	dir := b.TempDir()
	tree, err := corpus.Generate(filepath.Join(dir, "gen"), "alice", corpus.Options{Seed: 3, Folders: 1, InboxMessages: 400, MaxAttachment: 256 << 10})
	if err != nil {
		b.Fatal(err)
	}
	src := tree.Inbox
	st, _ := os.Stat(src)
	size := st.Size()
	mbxPath := filepath.Join(dir, "box.mbx")
	mixPath := filepath.Join(dir, "box.mix")
	cclienttest.Mailutil(b, "copy", src, "#driver.mbx/"+mbxPath)
	cclienttest.Mailutil(b, "copy", src, "#driver.mix/"+mixPath)
	readAll := func(b *testing.B, r msgReader) {
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n == 0 {
			b.Fatal("no messages")
		}
	}
	b.Run("mbox", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			f, _ := os.Open(src)
			readAll(b, mbox.NewReader(f, mbox.Options{Location: time.UTC, BufferSize: 256 << 10}))
			f.Close()
		}
	})
	b.Run("mbx", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			f, _ := os.Open(mbxPath)
			st, _ := f.Stat()
			if err := mbx.Check(f, st.Size(), mbx.Options{}); err != nil {
				b.Fatal(err)
			}
			readAll(b, mbx.NewReader(f, mbx.Options{Size: st.Size()}))
			f.Close()
		}
	})
	b.Run("mix", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			r, err := mix.Open(mixPath)
			if err != nil {
				b.Fatal(err)
			}
			readAll(b, r)
			r.Close()
		}
	})
}

// TestMMDFAsCclient: MMDF folders made by c-client (mailutil copy into
// #driver.mmdf, which writes a From_ line after each delimiter and the
// flags as Status/X-Status headers), converted and compared.
func TestMMDFAsCclient(t *testing.T) {
	src := sampleFolders(t)
	out := t.TempDir()
	ents, _ := os.ReadDir(src)
	for i, e := range ents {
		if i%3 != 0 {
			continue // a third of the sample: the format is read by the mbox reader
		}
		dst := filepath.Join(out, e.Name())
		cclienttest.Mailutil(t, "copy", filepath.Join(src, e.Name()), "#driver.mmdf/"+dst)
		cclienttest.SetFlag(t, dst, "", "1", `\Flagged \Seen`)
		if v := cclienttest.Dump(t, dst); v.Driver != "mmdf" {
			t.Fatalf("%s: c-client reads the copy with its %s driver, want mmdf", e.Name(), v.Driver)
		}
	}
	compareWithCclient(t, out)
}

// TestDamagedAsCclient: damaged variants of real files (cut at odd
// places, NULs in separator lines, broken MMDF delimiters, CR-only line
// ends, leading junk) are read as c-client reads them, or left behind
// where c-client would not open them as a mailbox.
func TestDamagedAsCclient(t *testing.T) {
	rw := realworldDir(t)
	out := t.TempDir()
	n := 0
	add := func(b []byte) {
		p := filepath.Join(out, fmt.Sprintf("d%02d", n))
		n++
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"mu__msg.mbox", "mairix__animals.mmdf", "mmp__mailarc-1-dos.txt"} {
		b, err := os.ReadFile(filepath.Join(rw, name))
		if err != nil {
			t.Fatal(err)
		}
		mmdf := bytes.HasPrefix(b, []byte("\x01"))
		for _, cut := range []int{len(b) / 3, len(b) / 2, len(b) - 1, len(b) - 7} {
			// Two c-client quirks on cut files are not reproduced (see
			// docs/convert.md): a last MMDF line without its newline is
			// served with a bare LF added, and a lone CR ending the file
			// is dropped.
			if b[cut-1] == '\r' || mmdf && b[cut-1] != '\n' {
				continue
			}
			add(b[:cut])
		}
		add(bytes.Replace(b, []byte("\nFrom "), []byte("\nFrom \x00"), 1))
		add(bytes.Replace(b, []byte(" 20"), []byte(" 2\x000"), 2))
		add(bytes.Replace(b, []byte("\x01\x01\x01\x01\n"), []byte("\x01\x01\x01\n"), 2))
		add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r")))
		add(append([]byte("  \n"), b...))
		add(append([]byte("\n\t"), b...))
	}
	compareWithCclient(t, out)
}
