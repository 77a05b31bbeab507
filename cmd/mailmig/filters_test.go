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
