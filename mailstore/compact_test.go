package mailstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
)

// TestUIDListCompaction: a uidlist full of entries for files that are
// gone is rewritten on the next assignment, keeping every live UID and
// the next UID.
func TestUIDListCompaction(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	for i := 0; i < 200; i++ {
		uid, err := in.Append(ctx, strings.NewReader(fmt.Sprintf("m%d\n", i)), nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	// Another program removes all but two (no uidlist update, as dovecot
	// would do).
	snap, _ := in.Snapshot(ctx)
	for _, m := range snap.Messages[1:199] {
		if err := os.Remove(m.Path); err != nil {
			t.Fatal(err)
		}
	}
	uid, err := in.Append(ctx, strings.NewReader("last\n"), nil, time.Time{})
	if err != nil || uid != 201 {
		t.Fatalf("append: %d, %v", uid, err)
	}
	data, err := os.ReadFile(filepath.Join(root, "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], " N202 ") || !strings.HasPrefix(lines[1], "1 :") || !strings.HasPrefix(lines[2], "200 :") || !strings.HasPrefix(lines[3], "201 :") {
		t.Fatalf("uidlist after compaction:\n%s", data)
	}
	snap, err = in.Snapshot(ctx)
	if err != nil || len(snap.Messages) != 3 || snap.UIDNext != 202 {
		t.Fatalf("snapshot %+v, %v", snap, err)
	}
}

// TestBrokenUIDListRebuilt: a uidlist that does not parse is rebuilt (new
// UIDVALIDITY, new UIDs for every file), as dovecot does, instead of
// making the folder unusable.
func TestBrokenUIDListRebuilt(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := in.Append(ctx, strings.NewReader(fmt.Sprintf("m%d\n", i)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	old := in.UIDValidity()
	if err := os.WriteFile(filepath.Join(root, "dovecot-uidlist"), []byte("3 V0 garbage\n7 no colon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := mailstore.Open(root, mailstore.Options{NoFsync: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s2.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.Snapshot(ctx)
	if err != nil || len(snap.Messages) != 3 || snap.UIDValidity == old || snap.UIDNext != 4 {
		t.Fatalf("rebuilt: %+v, %v (old UIDVALIDITY %d)", snap, err, old)
	}
	// The cached Store notices the new UIDVALIDITY.
	changes, err := in.Refresh(ctx)
	if err != nil || len(changes) != 1 || changes[0].Kind != mailstore.ChangeUIDValidity {
		t.Fatalf("refresh after the rebuild: %+v, %v", changes, err)
	}
}
