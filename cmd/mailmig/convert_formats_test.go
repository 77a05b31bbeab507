package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailmig/mailstore/dovecottest"
	"mailmig/migrate/cclienttest"
	"mailmig/migrate/convert"
)

// TestConvertCommandFormats runs the binary on an old side c-client made:
// the INBOX spool in mbx, a folder in mbx, one in mix (flags and keywords
// set through c-client), an MMDF file and a text file. Every folder must
// hold what c-client reads (dovecot judges), the text file must be left
// behind as not a mail folder, and the exit status is 0.
func TestConvertCommandFormats(t *testing.T) {
	dovecottest.Require(t)
	rw := cclienttest.RealworldDir(t)
	dir := t.TempDir()
	src := func(name string) string {
		p := filepath.Join(dir, "src-"+name)
		b, err := os.ReadFile(filepath.Join(rw, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	folders := filepath.Join(dir, "mail")
	os.MkdirAll(folders, 0o755)
	spool := filepath.Join(dir, "spool")
	cclienttest.Mailutil(t, "copy", src("mmp__mailarc-2.txt"), "#driver.mbx/"+spool)
	cclienttest.Mailutil(t, "copy", src("mu__teaparty.mbox"), "#driver.mbx/"+filepath.Join(folders, "shared"))
	cclienttest.Mailutil(t, "copy", src("mu__search.mbox"), "#driver.mix/"+filepath.Join(folders, "archive"))
	cclienttest.SetFlag(t, filepath.Join(folders, "archive"), "", "2:4", `\Flagged Project`)
	if err := os.WriteFile(filepath.Join(folders, "animals"), mustRead(t, filepath.Join(rw, "mairix__animals.mmdf")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folders, "notes.txt"), []byte("Call the dentist.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]*cclienttest.Folder{
		"INBOX":   cclienttest.Dump(t, spool),
		"shared_": cclienttest.Dump(t, filepath.Join(folders, "shared")),
		"archive": cclienttest.Dump(t, filepath.Join(folders, "archive")),
		"animals": cclienttest.Dump(t, filepath.Join(folders, "animals")),
	}
	out := filepath.Join(dir, "Maildir")
	report := filepath.Join(dir, "report.json")
	stdout := mustMailmig(t, "", "convert", "--inbox", spool, "--folders", folders, "--out", out,
		"--timezone", "UTC", "--no-fsync", "--report", report)
	if !strings.Contains(stdout, "notes.txt: "+convert.NotMailFolder) {
		t.Errorf("output does not list notes.txt as %q:\n%s", convert.NotMailFolder, stdout)
	}
	var rep convert.Report
	if err := json.Unmarshal(mustRead(t, report), &rep); err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Folders {
		if strings.Contains(f.Source, "notes") {
			t.Errorf("notes.txt converted: %+v", f)
		}
	}
	d := dovecottest.New(t, out)
	for name, w := range want {
		if len(w.Messages) == 0 {
			t.Fatalf("%s: c-client reads no messages", name)
		}
		msgs, texts, err := d.Texts(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := make([]cclienttest.Got, len(msgs))
		for i, m := range msgs {
			got[i] = cclienttest.Got{UID: m.UID, Flags: m.Flags, Date: m.Received, Text: texts[m.UID]}
		}
		for _, df := range cclienttest.Diff(w, got) {
			t.Errorf("%s: %s", name, df)
		}
	}
}
