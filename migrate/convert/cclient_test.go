package convert

import (
	"compress/gzip"
	"context"
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
)

// realworldDir finds ../shared/realworld-mbox beside the repository (the
// repository is X/main or X/wt/NAME, shared/ is X/shared; in CI the clone
// sits beside a copy of shared/), or $MAILMIG_REALWORLD. A missing
// directory fails the test.
func realworldDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("MAILMIG_REALWORLD"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "shared", "realworld-mbox")
		if st, err := os.Stat(filepath.Join(cand, "SOURCES.md")); err == nil && st.Mode().IsRegular() {
			return cand
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	t.Fatalf("shared/realworld-mbox not found beside the repository (above %s); set MAILMIG_REALWORLD", wd)
	return ""
}

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
		if e.Name() == "SOURCES.md" || !e.Type().IsRegular() {
			continue
		}
		copyKeepTime(t, filepath.Join(srcDir, e.Name()), filepath.Join(folders, e.Name()))
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
