package copier

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"mailmig/migrate"
	"mailmig/migrate/corpus"
	"mailmig/migrate/paths"
	"mailmig/migrate/spool"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/state"
)

// countStore counts every message file below a Maildir and the
// X-Test-Id values among them.
func countStore(t *testing.T, root string) (int, map[string]int) {
	t.Helper()
	n, ids := 0, map[string]int{}
	re := regexp.MustCompile(`(?m)^X-Test-Id: (\S+)`)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		dir := filepath.Base(filepath.Dir(p))
		if dir != "cur" && dir != "new" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, m := range re.FindAllSubmatch(b, -1) {
			ids[string(m[1])]++
		}
		return nil
	})
	return n, ids
}

func testMsg(id string) []byte {
	return []byte(fmt.Sprintf("From: a@example.com\r\nSubject: %s\r\nMessage-ID: <%s@t>\r\nX-Test-Id: %s\r\n\r\nFrom the body of %s\r\n", id, id, id, id))
}

// TestDualDeliveryKeptOnce runs the real converter through the runner's
// Copier with deliveries during the dual window: messages on both sides
// are kept once, and the cutover pass carries over only what reached the
// old side alone.
func TestDualDeliveryKeptOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tree, err := corpus.Generate(filepath.Join(dir, "old"), "alice", corpus.Options{Seed: 3, Folders: 2, TotalBytes: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	maildir := filepath.Join(dir, "mail", "alice", "Maildir")
	up := &paths.User{User: "alice", Home: tree.Home, Inbox: tree.Inbox, Folders: tree.FoldersDir,
		Subscriptions: tree.Subscriptions, Maildir: maildir}
	d := &delivery.Deliverer{MaildirFor: func(string) (string, error) { return maildir, nil }, NoFsync: true, GlobalScript: "keep;"}
	router := &migrate.Router{
		DB:    db,
		Paths: func(string) (*paths.User, error) { return up, nil },
		NewStore: func(ctx context.Context, env delivery.Envelope, msg msgspool.Source) error {
			_, err := d.Deliver(ctx, env, msg)
			return err
		},
		Domain: "example.org",
		Spool:  spool.Options{NoFsync: true},
	}
	if _, err := db.Enqueue(ctx, "alice", state.EnqueueOptions{CopyFolders: true}); err != nil {
		t.Fatal(err)
	}
	e, _ := db.Get(ctx, "alice")
	c := &Convert{NoFsync: true, Hostname: "test"}
	if err := c.Prepare(ctx, e, up); err != nil {
		t.Fatal(err)
	}
	if err := db.Transition(ctx, "alice", state.Queued, state.Dual, "test", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		res, err := router.Deliver(ctx, "a@example.com", "alice", msgspool.Bytes(testMsg(fmt.Sprintf("dual%d", i))))
		if err != nil || res.Route != migrate.RouteBoth {
			t.Fatalf("deliver: %+v %v", res, err)
		}
	}
	e, _ = db.Get(ctx, "alice")
	var lastBytes int64
	rep, err := c.Copy(ctx, e, up, false, func(b, m int64) { lastBytes = b })
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, f := range tree.Folders {
		want += len(f.Messages)
	}
	n, ids := countStore(t, maildir)
	if n != want+5 {
		t.Errorf("new store holds %d messages, want %d from the source + 5 delivered", n, want)
	}
	for i := range 5 {
		if id := fmt.Sprintf("dual%d", i); ids[id] != 1 {
			t.Errorf("%s stored %d times", id, ids[id])
		}
	}
	if rep.Duplicates != 5 || lastBytes == 0 || len(rep.Folders) != len(tree.Folders) {
		t.Errorf("report: duplicates %d, progress bytes %d, folders %d (want %d)", rep.Duplicates, lastBytes, len(rep.Folders), len(tree.Folders))
	}

	// After the copy: two more dual deliveries, and one message that only
	// the old side got (the user's old client saved it into INBOX).
	for i := range 2 {
		if _, err := router.Deliver(ctx, "a@example.com", "alice", msgspool.Bytes(testMsg(fmt.Sprintf("late%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := spool.Append(ctx, tree.Inbox, "x@example.com", time.Now(), testMsg("oldonly"), spool.Options{NoFsync: true}); err != nil {
		t.Fatal(err)
	}
	rep, err = c.Copy(ctx, e, up, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	n2, ids := countStore(t, maildir)
	if n2 != n+3 || ids["oldonly"] != 1 || ids["late0"] != 1 || ids["late1"] != 1 {
		t.Errorf("after cutover pass: %d messages (want %d), ids %v", n2, n+3, ids)
	}
	if rep.Messages != 1 {
		t.Errorf("cutover pass carried %d messages, want 1", rep.Messages)
	}
	// Idempotent: again changes nothing.
	if _, err := c.Copy(ctx, e, up, true, nil); err != nil {
		t.Fatal(err)
	}
	if n3, _ := countStore(t, maildir); n3 != n2 {
		t.Errorf("second cutover pass changed the store: %d → %d", n2, n3)
	}
}
