package mailstore_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"mailmig/mailstore"
)

// TestWatchList: folder list changes through any Store sharing the hub
// arrive on WatchList in order (IMAP NOTIFY MailboxName and
// SubscriptionChange need them); repeated subscriptions are no change;
// ListStamp moves for a folder made by hand (another process).
func TestWatchList(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	hub := mailstore.NewHub()
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	other, err := mailstore.Open(root, mailstore.Options{NoFsync: true, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	ch, stop := s.WatchList()
	defer stop()
	steps := []func() error{
		func() error { return other.CreateFolder("a/b") },
		func() error { return other.Subscribe("a/b") },
		func() error { return other.Subscribe("a/b") },
		func() error { return other.RenameFolder("a", "x") },
		func() error { return other.Unsubscribe("a/b") },
		func() error { return other.Unsubscribe("a/b") },
		func() error { return other.DeleteFolder("x/b") },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	want := []mailstore.Change{
		{Kind: mailstore.ChangeFolderCreated, Folder: "a/b"},
		{Kind: mailstore.ChangeSubscribed, Folder: "a/b"},
		{Kind: mailstore.ChangeFolderRenamed, Folder: "x/b", OldFolder: "a/b"},
		{Kind: mailstore.ChangeUnsubscribed, Folder: "a/b"},
		{Kind: mailstore.ChangeFolderDeleted, Folder: "x/b"},
	}
	var got []mailstore.Change
	for len(got) < len(want) {
		select {
		case c := <-ch:
			got = append(got, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	select {
	case c := <-ch:
		t.Fatalf("extra event %+v", c)
	case <-time.After(50 * time.Millisecond):
	}
	before := s.ListStamp()
	time.Sleep(10 * time.Millisecond)
	if err := os.Mkdir(filepath.Join(root, ".outside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if s.ListStamp() == before {
		t.Fatal("ListStamp unchanged after a folder directory was made")
	}
}
