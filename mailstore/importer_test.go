package mailstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
	"mailmig/mailstore/dovecottest"
)

// TestImporterCrashLeftovers: files a killed import left behind are
// cleaned up (tmp/ with the importer marker, a cur/ file whose data never
// reached the disk) and foreign tmp/ files are left alone.
func TestImporterCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	write := func(rel, body string) string {
		p := filepath.Join(root, rel)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	staleTmp := write("tmp/1700000000.M1P9Q1.host,U=4", "half a mess")
	foreignTmp := write("tmp/1700000000.M2P9.host", "an MTA writing right now")
	truncated := write("cur/1700000000.M3P9Q2.host,U=2,S=100,W=104:2,S", "")
	good := write("cur/1700000000.M4P9Q3.host,U=1,S=6,W=7:2,", "hello\n")
	im, err := s.Importer("INBOX", 99)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{staleTmp, truncated} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s not cleaned: %v", p, err)
		}
	}
	for _, p := range []string{foreignTmp, good} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s removed: %v", p, err)
		}
	}
	if !im.Has(1) || im.Has(2) || im.Has(4) {
		t.Fatalf("existing %v", im.Existing())
	}
	if m := im.Existing()[1]; m.Path != good || m.Size != 6 || m.VSize != 7 {
		t.Fatalf("existing uid 1: %+v", m)
	}
	for _, uid := range []uint32{2, 4} {
		if err := im.Add(ctx, strings.NewReader("again\n"), 6, uid, []string{"$Label1"}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := im.Add(ctx, strings.NewReader("x"), 1, 9, nil, time.Time{}); err == nil {
		t.Fatal("Add after Commit accepted")
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := in.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Messages) != 3 || snap.UIDNext != 5 || snap.UIDValidity != 99 {
		t.Fatalf("after commit: V%d N%d %+v", snap.UIDValidity, snap.UIDNext, snap.Messages)
	}
	os.Remove(foreignTmp)
	compareWithDovecot(t, s, dovecottest.New(t, root))
}

// TestHalfMadeFolderCompleted: a folder directory left with cur/ only (a
// creator killed half-way) is completed by Folder and by Importer.
func TestHalfMadeFolderCompleted(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".half1", ".half2"} {
		if err := os.MkdirAll(filepath.Join(root, name, "cur"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Folder("half1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append(ctx, strings.NewReader("x\n"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	im, err := s.Importer("half2", 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Add(ctx, strings.NewReader("y\n"), 2, 1, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	im, err = s.Importer("brand/new", 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"half1", "half2", "brand/new"} {
		if _, err := os.Stat(filepath.Join(root, "."+strings.ReplaceAll(n, "/", "."), "maildirfolder")); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
}
