package mailstore

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestImporterBatches: batches are flushed in the background every
// checkpointFiles messages; a killed run keeps every flushed batch and
// loses only the messages added after the last one.
func TestImporterBatches(t *testing.T) {
	old := checkpointFiles
	checkpointFiles = 3
	defer func() { checkpointFiles = old }()
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "Maildir"), Options{CreateRoot: true, Hub: NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	im, err := s.Importer("INBOX", 9)
	if err != nil {
		t.Fatal(err)
	}
	kw := func(uid uint32) []string { return []string{fmt.Sprintf("kw%d", uid%4), `\Seen`} }
	for uid := uint32(1); uid <= 7; uid++ {
		if err := im.Add(ctx, strings.NewReader(fmt.Sprintf("m%d\n", uid)), -1, uid, kw(uid), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Abort(); err != nil {
		t.Fatal(err)
	}
	im, err = s.Importer("INBOX", 9)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(im.Existing()); got != 6 || im.Has(7) {
		t.Fatalf("after a kill: %d messages kept (want the 6 of two flushed batches)", got)
	}
	// The keyword letters in the flushed names resolve to the same
	// keywords: dovecot-keywords was written before each batch.
	for uid, m := range im.Existing() {
		want := sortFlags(kw(uid))
		if fmt.Sprint(m.Flags) != fmt.Sprint(want) {
			t.Fatalf("uid %d: flags %v after a kill, want %v", uid, m.Flags, want)
		}
	}
	for uid := uint32(7); uid <= 12; uid++ {
		if err := im.Add(ctx, strings.NewReader(fmt.Sprintf("m%d\n", uid)), -1, uid, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Messages) != 12 || snap.UIDNext != 13 {
		t.Fatalf("after commit: %d messages, UIDNEXT %d", len(snap.Messages), snap.UIDNext)
	}
	for i, m := range snap.Messages {
		if m.UID != uint32(i+1) {
			t.Fatalf("position %d: UID %d", i, m.UID)
		}
	}
}

// TestHubStateIsWeak: the hub does not keep a folder's state alive.
func TestHubStateIsWeak(t *testing.T) {
	h := NewHub()
	st := h.state("/x/Maildir")
	if h.state("/x/Maildir") != st {
		t.Fatal("a live state was not shared")
	}
	wp := h.states["/x/Maildir"]
	st = nil
	for i := 0; i < 5 && wp.Value() != nil; i++ {
		runtime.GC()
	}
	if wp.Value() != nil {
		t.Fatal("the hub kept an unused state alive")
	}
}
