package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/state"
)

// TestStatusFiguresMatchStore (issue 9 item 8): after a copy and a
// cutover pass that carried late mail and a new folder over, every
// figure `mailmig status` prints (table, summary, --json, the user's
// page) is the store's: messages, bytes and folders counted in the
// Maildir, the migration's own mails left out. With a user still
// pending the summary never says "0s left".
func TestStatusFiguresMatchStore(t *testing.T) {
	data := t.TempDir()
	trees := migWorld(t, data, 30<<10, "gus", "hal")
	var spool strings.Builder
	for i := range 6 {
		fmt.Fprintf(&spool, "From x@example.net Sat Jan  3 01:05:34 2009\n%s\n", mailWithID(fmt.Sprintf("early-%d", i)))
	}
	must(t, os.WriteFile(filepath.Join(data, "old", "spool", "gus"), []byte(spool.String()), 0o600))
	must(t, os.WriteFile(filepath.Join(trees["gus"].Home, "mail", "folder00"), []byte(siteMbox), 0o600))
	mustMailmig(t, data, "enqueue", "--folders", "gus")
	mustRun(t, data)
	late := "From late@example.net Sat Jan  3 01:05:34 2009\n" + mailWithID("late-gus") + "\n"
	f, err := os.OpenFile(filepath.Join(data, "old", "spool", "gus"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString(late)
	must(t, err)
	must(t, f.Close())
	must(t, os.MkdirAll(filepath.Join(trees["gus"].Home, "mail"), 0o755))
	must(t, os.WriteFile(filepath.Join(trees["gus"].Home, "mail", "Later"), []byte("From y@example.net Sat Jan  3 01:05:34 2009\n"+mailWithID("later-1")+"\nFrom y@example.net Sat Jan  3 01:05:35 2009\n"+mailWithID("later-2")+"\n"), 0o600))
	mustMailmig(t, data, "stop", "gus")
	mustRun(t, data)
	if st := queueStates(t, data)["gus"]; st != "done" {
		t.Fatalf("gus: %q", st)
	}
	// hal is queued, not copied: pending.
	mustMailmig(t, data, "enqueue", "hal")

	// The store, without the migration's own mails.
	root := filepath.Join(data, "mail", "gus", "Maildir")
	var msgs, size int64
	folders := map[string]bool{}
	sawLate := false
	for _, m := range maildirMessages(t, root) {
		hdr, _, _ := bytes.Cut(m.data, []byte("\n\n"))
		if bytes.Contains(hdr, []byte("Auto-Submitted: auto-generated")) {
			continue
		}
		msgs++
		size += int64(len(m.data))
		folders[m.folder] = true
		sawLate = sawLate || bytes.Contains(m.data, []byte("X-Test-Id: late-gus"))
	}
	// Folders: every Maildir++ folder, empty ones too (INBOX is "").
	ents, err := os.ReadDir(root)
	must(t, err)
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(root, e.Name(), "cur")); err == nil && strings.HasPrefix(e.Name(), ".") {
			folders[e.Name()] = true
		}
	}
	if !sawLate || !folders[".Later"] {
		t.Fatalf("the cutover pass did not copy the late mail (%v) or Later (%v)", sawLate, folders)
	}

	var js struct {
		Users []struct {
			User     string `json:"user"`
			Folders  int64  `json:"folders"`
			Messages int64  `json:"messages"`
			Bytes    int64  `json:"bytes"`
		} `json:"users"`
		Summary struct {
			Bytes         int64  `json:"bytes"`
			Messages      int64  `json:"messages"`
			PendingUsers  int    `json:"pending_users"`
			EstimatedLeft string `json:"estimated_left"`
		} `json:"summary"`
	}
	out := mustMailmig(t, data, "status", "--json")
	must(t, json.Unmarshal([]byte(out), &js))
	for _, u := range js.Users {
		if u.User != "gus" {
			continue
		}
		if u.Messages != msgs || u.Bytes != size || u.Folders != int64(len(folders)) {
			t.Errorf("status --json gus: %d messages, %d bytes, %d folders; the store has %d, %d, %d",
				u.Messages, u.Bytes, u.Folders, msgs, size, len(folders))
		}
	}
	if js.Summary.Messages != msgs || js.Summary.Bytes != size || js.Summary.PendingUsers != 1 {
		t.Errorf("status --json summary: %+v; the store has %d messages, %d bytes; 1 pending", js.Summary, msgs, size)
	}
	if js.Summary.EstimatedLeft == "0s" {
		t.Errorf("estimated_left 0s with a user pending")
	}

	table := mustMailmig(t, data, "status")
	row := fmt.Sprintf("%d %d %s", len(folders), msgs, humanBytes(size))
	var gusRow string
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, "gus ") {
			gusRow = strings.Join(strings.Fields(l), " ")
		}
	}
	if !strings.Contains(gusRow, row) {
		t.Errorf("status table row %q, want the store's %q\n%s", gusRow, row, table)
	}
	mustContain(t, "status summary", table, fmt.Sprintf("moved: %s in %d messages", humanBytes(size), msgs))
	if strings.Contains(table, "0s left") {
		t.Errorf("status says 0s left with a user pending:\n%s", table)
	}
	if !strings.Contains(table, "left for 1 users") && !strings.Contains(table, "1 users still to copy (no estimate yet)") {
		t.Errorf("status summary does not say what is pending:\n%s", table)
	}
	page := mustMailmig(t, data, "status", "gus")
	mustContain(t, "status gus", page, fmt.Sprintf("%d folders, %d messages, %s", len(folders), msgs, humanBytes(size)))
}

// TestStatusCopyingAndEstimate: a user being copied shows the figures so
// far or "copying", never a bare 0 B; the estimate needs a basis and is
// never 0 while users are pending.
func TestStatusCopyingAndEstimate(t *testing.T) {
	now := time.Now()
	var b strings.Builder
	printTable(&b, []*state.Entry{
		{User: "ann", State: state.Copying, StateSince: now},
		{User: "ben", State: state.Copying, StateSince: now, Bytes: 3 << 20, Messages: 40},
	}, now)
	mustContain(t, "table", b.String(), "copying", "3.0 MB so far")
	if strings.Contains(b.String(), "0 B") {
		t.Errorf("a copy under way shows 0 B:\n%s", b.String())
	}
	for _, c := range []struct {
		s    state.Summary
		want string // "" no estimate
	}{
		{state.Summary{Users: map[state.State]int{state.Queued: 2}, PendingUsers: 2}, ""},
		{state.Summary{Users: map[state.State]int{state.Done: 1, state.Queued: 1}, PendingUsers: 1, DoneBytes: 100, DoneSeconds: 0.0001}, ""},
		{state.Summary{Users: map[state.State]int{state.Done: 1, state.Queued: 1}, PendingUsers: 1, DoneBytes: 1 << 20, DoneSeconds: 0.01}, "1s"},
		{state.Summary{Users: map[state.State]int{state.Done: 1}, DoneBytes: 1 << 20, DoneSeconds: 2}, ""},
		{state.Summary{Users: map[state.State]int{state.Done: 1, state.Queued: 3}, PendingUsers: 3, DoneBytes: 1 << 20, DoneSeconds: 100}, "5m0s"},
	} {
		eta, ok := estimate(&c.s)
		got := ""
		if ok {
			got = eta.String()
		}
		if got != c.want {
			t.Errorf("estimate(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}
