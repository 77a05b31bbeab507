package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailmig/migrate/filters"
)

// TestFiltersConvertCLI runs `mailmig filters convert` on a procmailrc
// and a .forward with a folder map from a convert report: the script goes
// to stdout with the renamed folder, the rule that cannot be converted is
// reported on stderr with its line and the exit status is 2.
func TestFiltersConvertCLI(t *testing.T) {
	home := filepath.Join(t.TempDir(), "alice")
	os.MkdirAll(filepath.Join(home, "mail"), 0o755)
	os.WriteFile(filepath.Join(home, ".procmailrc"), []byte("MAILDIR=$HOME/mail\n:0:\n* ^List-Id:.*debian\nlists.debian\n\n:0\n* ^Subject:.*photos\n| /usr/local/bin/save-attachments\n"), 0o644)
	os.WriteFile(filepath.Join(home, ".forward"), []byte("\\alice, \"|exec /usr/bin/procmail\"\n"), 0o644)
	rep := map[string]any{"maildir": "/x", "folders_dir": filepath.Join(home, "mail"), "folders": []map[string]any{
		{"source": filepath.Join(home, "mail", "lists.debian"), "old_name": "lists.debian", "name": "lists_debian"}}}
	b, _ := json.Marshal(rep)
	repFile := filepath.Join(t.TempDir(), "rep.json")
	os.WriteFile(repFile, b, 0o644)
	jsonOut := filepath.Join(t.TempDir(), "filters.json")
	out, errOut, code := runMailmig(t, t.TempDir(), "filters", "convert", "--procmailrc", filepath.Join(home, ".procmailrc"),
		"--forward", filepath.Join(home, ".forward"), "--folder-map", repFile, "--domain", "example.com", "--report", jsonOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{`include :global "spam";`, `fileinto :create "lists_debian";`, "NOT CONVERTED (.procmailrc line 6)"} {
		if !strings.Contains(out, want) {
			t.Errorf("script lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, ".procmailrc line 6") || !strings.Contains(errOut, "save-attachments") {
		t.Errorf("report: %s", errOut)
	}
	var res filters.Result
	b, err := os.ReadFile(jsonOut)
	if err != nil || json.Unmarshal(b, &res) != nil || len(res.Problems) != 1 || res.Problems[0].Line != 6 {
		t.Errorf("JSON report %s: %v", b, err)
	}
}

// TestMigrateFilters: during copying the runner converts the user's
// .forward and .procmailrc into ~/sieve/migrated.sieve with the copy's
// folder names and activates it; a user who already has an active script
// keeps it. The rule that was not converted is in `status USER`, an event
// and the confirmation mail; the next message through LMTP is filed by the
// converted rule into the renamed folder.
func TestMigrateFilters(t *testing.T) {
	data := t.TempDir()
	trees := migWorld(t, data, 20<<10, "dora", "erin")
	for _, u := range []string{"dora", "erin"} {
		home := trees[u].Home
		os.MkdirAll(filepath.Join(home, "mail"), 0o755)
		os.WriteFile(filepath.Join(home, "mail", "lists.debian"), []byte("From x@example.org Sun Dec  6 10:00:00 2026\nSubject: old\n\nold list mail\n"), 0o644)
		os.WriteFile(filepath.Join(home, ".procmailrc"), []byte("MAILDIR=$HOME/mail\n:0:\n* ^List-Id:.*debian-user\nlists.debian\n\n:0\n* ^Subject:.*photos\n| /usr/local/bin/save-attachments\n"), 0o644)
		os.WriteFile(filepath.Join(home, ".forward"), []byte("\\"+u+", \"|exec /usr/bin/procmail\"\n"), 0o644)
	}
	// erin made her own script on the new server already.
	erinSieve := filepath.Join(data, "mail", "erin", "sieve")
	os.MkdirAll(erinSieve, 0o755)
	os.WriteFile(filepath.Join(erinSieve, "own.sieve"), []byte("keep;\n"), 0o644)
	os.Symlink("sieve/own.sieve", filepath.Join(data, "mail", "erin", ".dovecot.sieve"))

	mustMailmig(t, data, "enqueue", "--folders", "dora", "erin")
	srv := startServe(t, data)
	mustRun(t, data)
	wantStates(t, data, map[string]string{"dora": "confirm", "erin": "confirm"})

	script, err := os.ReadFile(filepath.Join(data, "mail", "dora", "sieve", "migrated.sieve"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`include :global "spam";`, `fileinto :create "lists_debian";`, "NOT CONVERTED (.procmailrc line 6)"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("migrated.sieve lacks %q:\n%s", want, script)
		}
	}
	if l, err := os.Readlink(filepath.Join(data, "mail", "dora", ".dovecot.sieve")); err != nil || l != "sieve/migrated.sieve" {
		t.Errorf("dora's active script link: %q %v", l, err)
	}
	if l, _ := os.Readlink(filepath.Join(data, "mail", "erin", ".dovecot.sieve")); l != "sieve/own.sieve" {
		t.Errorf("erin's own active script was replaced: %q", l)
	}
	if _, err := os.Stat(filepath.Join(erinSieve, "migrated.sieve")); err != nil {
		t.Errorf("erin's converted script not stored: %v", err)
	}

	st := mustMailmig(t, data, "status", "dora")
	if !strings.Contains(st, "migrated.sieve") || !strings.Contains(st, "not converted") || !strings.Contains(st, "save-attachments") {
		t.Errorf("status dora:\n%s", st)
	}
	if js := mustMailmig(t, data, "status", "--json", "dora"); !strings.Contains(js, `"filters"`) || !strings.Contains(js, "save-attachments") {
		t.Errorf("status --json dora has no filters:\n%s", js)
	}
	if st := mustMailmig(t, data, "status", "erin"); !strings.Contains(st, "NOT active") {
		t.Errorf("status erin:\n%s", st)
	}
	if ev := mustMailmig(t, data, "events", "dora"); !strings.Contains(ev, "filter-not-converted") || !strings.Contains(ev, "line 6") {
		t.Errorf("events dora:\n%s", ev)
	}
	conf := findMail(t, filepath.Join(data, "mail", "dora", "Maildir"), "mailmig.confirm.")
	if conf == nil || !strings.Contains(string(conf), "could not be converted") || !strings.Contains(string(conf), "~/.procmailrc line 6") || !strings.Contains(string(conf), "save-attachments") {
		t.Errorf("confirmation mail does not list the rule that was not converted:\n%s", conf)
	}

	msg := []byte("From: carol@example.net\r\nTo: debian-user@lists.debian.org\r\nList-Id: <debian-user.lists.debian.org>\r\nSubject: apt\r\nMessage-ID: <list1@test>\r\n\r\nhi\r\n")
	if err := lmtpSend(t, srv.Addr("lmtp"), "bounces@lists.debian.org", "dora@example.org", msg); err != nil {
		t.Fatal(err)
	}
	found := ""
	for _, m := range maildirMessages(t, filepath.Join(data, "mail", "dora", "Maildir")) {
		if strings.Contains(string(m.data), "<list1@test>") {
			found = m.folder
		}
	}
	if found != ".lists_debian" {
		t.Errorf("list mail filed into %q, want .lists_debian", found)
	}

	// convert --report has the filters too.
	repFile := filepath.Join(t.TempDir(), "dora.json")
	out, errOut, code := runMailmig(t, data, "convert", "--user", "dora", "--dry-run", "--report", repFile)
	if code != 0 || !strings.Contains(out, "NOT CONVERTED") {
		t.Errorf("convert --user dora: exit %d\n%s\n%s", code, out, errOut)
	}
	var rep struct {
		Filters struct {
			Problems []filters.Problem `json:"problems"`
		} `json:"filters"`
	}
	if b, err := os.ReadFile(repFile); err != nil || json.Unmarshal(b, &rep) != nil || len(rep.Filters.Problems) != 1 || rep.Filters.Problems[0].Line != 6 {
		t.Errorf("convert --report filters: %+v (%v)", rep, err)
	}
}
