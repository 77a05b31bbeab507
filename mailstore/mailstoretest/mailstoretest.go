// Package mailstoretest is the conformance suite every mailstore
// implementation must pass: Run(t, newStore) checks folders, UIDs, flags,
// keywords, copy/move/expunge, subscriptions, change events, quota and
// the importer against the contract documented in package mailstore.
package mailstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/mailstore"
)

// NewStore returns a fresh, empty store for one subtest, with the given
// quota (0 = none).
type NewStore func(t *testing.T, quotaBytes, quotaMessages int64) *mailstore.Store

// Run runs the conformance suite.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewStore)
	}{
		{"AppendSnapshot", testAppendSnapshot},
		{"Flags", testFlags},
		{"Keywords", testKeywords},
		{"CopyMoveExpunge", testCopyMoveExpunge},
		{"Folders", testFolders},
		{"Subscriptions", testSubscriptions},
		{"Events", testEvents},
		{"Quota", testQuota},
		{"Importer", testImporter},
		{"ImporterResume", testImporterResume},
		{"ConcurrentAppend", testConcurrentAppend},
		{"ClaimRecent", testClaimRecent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

var date = time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)

func msg(i int) string {
	return fmt.Sprintf("From: a@example.org\nSubject: message %d\n\nbody %d\n", i, i)
}

func mustFolder(t *testing.T, s *mailstore.Store, name string) *mailstore.Folder {
	t.Helper()
	f, err := s.Folder(name)
	if err != nil {
		t.Fatalf("Folder(%q): %v", name, err)
	}
	return f
}

func mustSnap(t *testing.T, f *mailstore.Folder) *mailstore.Snapshot {
	t.Helper()
	snap, err := f.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot(%s): %v", f.Name(), err)
	}
	return snap
}

func appendMsg(t *testing.T, f *mailstore.Folder, body string, flags ...string) uint32 {
	t.Helper()
	uid, err := f.Append(context.Background(), strings.NewReader(body), flags, date)
	if err != nil {
		t.Fatalf("Append to %s: %v", f.Name(), err)
	}
	return uid
}

func readUID(t *testing.T, f *mailstore.Folder, uid uint32) string {
	t.Helper()
	fh, err := f.Open(uid)
	if err != nil {
		t.Fatalf("Open(%d): %v", uid, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(fh)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testAppendSnapshot(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	in := mustFolder(t, s, "INBOX")
	if in.UIDValidity() == 0 {
		t.Fatal("UIDVALIDITY 0")
	}
	if in.UIDNext() != 1 {
		t.Fatalf("UIDNEXT of an empty folder = %d, want 1", in.UIDNext())
	}
	body := "From: x\r\nSubject: crlf\r\n\r\nline\nbare lf\n"
	u1 := appendMsg(t, in, body)
	u2 := appendMsg(t, in, msg(2), `\Seen`)
	if u1 != 1 || u2 != 2 {
		t.Fatalf("UIDs %d, %d, want 1, 2", u1, u2)
	}
	snap := mustSnap(t, in)
	if snap.UIDNext != 3 || len(snap.Messages) != 2 {
		t.Fatalf("snapshot UIDNEXT %d with %d messages", snap.UIDNext, len(snap.Messages))
	}
	m, ok := snap.Lookup(1)
	if !ok || m.Size != int64(len(body)) || m.VSize != int64(len(body))+2 {
		t.Fatalf("uid 1: %+v (size %d)", m, len(body))
	}
	if !m.Recent || len(m.Flags) != 0 || !m.InternalDate.Equal(date) {
		t.Fatalf("uid 1: recent %v flags %v date %v", m.Recent, m.Flags, m.InternalDate)
	}
	// Appended with a flag: in cur/, and \Recent all the same (dovecot).
	if m2, _ := snap.Lookup(2); !m2.Recent || !reflect.DeepEqual(m2.Flags, []string{`\Seen`}) {
		t.Fatalf("uid 2: %+v", m2)
	}
	if got := readUID(t, in, 1); got != body {
		t.Fatalf("body %q", got)
	}
	if snap2 := mustSnap(t, in); snap2 != snap {
		t.Fatal("unchanged folder gave a new snapshot")
	}
	if snap.Index(2) != 1 || snap.Index(9) != -1 {
		t.Fatal("Index")
	}
	if _, err := in.Open(99); !errors.Is(err, mailstore.ErrNoSuchMessage) {
		t.Fatalf("Open(99): %v", err)
	}
	// A second Store on the same tree sees the same UIDs.
	s2, err := mailstore.Open(s.Root(), mailstore.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	snapB := mustSnap(t, mustFolder(t, s2, "inbox"))
	if snapB.UIDValidity != snap.UIDValidity || len(snapB.Messages) != 2 {
		t.Fatalf("second store: %+v", snapB)
	}
}

func flagsOf(t *testing.T, f *mailstore.Folder, uid uint32) []string {
	t.Helper()
	m, ok := mustSnap(t, f).Lookup(uid)
	if !ok {
		t.Fatalf("uid %d missing", uid)
	}
	return m.Flags
}

func testFlags(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	in := mustFolder(t, s, "INBOX")
	uid := appendMsg(t, in, msg(1))
	ctx := context.Background()
	steps := []struct {
		op    mailstore.FlagOp
		flags []string
		want  []string
	}{
		{mailstore.FlagAdd, []string{`\seen`, `\Flagged`}, []string{`\Flagged`, `\Seen`}},
		{mailstore.FlagAdd, []string{`\Recent`, `\Answered`}, []string{`\Answered`, `\Flagged`, `\Seen`}},
		{mailstore.FlagRemove, []string{`\FLAGGED`}, []string{`\Answered`, `\Seen`}},
		{mailstore.FlagReplace, []string{`\Deleted`, `\Draft`}, []string{`\Deleted`, `\Draft`}},
		{mailstore.FlagReplace, nil, nil},
	}
	for i, st := range steps {
		got, err := in.StoreFlags(ctx, []uint32{uid, 77}, st.op, st.flags)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if len(got) != 1 || got[0].UID != uid || !equal(got[0].Flags, st.want) {
			t.Fatalf("step %d: got %+v, want flags %v", i, got, st.want)
		}
		if f := flagsOf(t, in, uid); !equal(f, st.want) {
			t.Fatalf("step %d: snapshot flags %v, want %v", i, f, st.want)
		}
	}
	if snap := mustSnap(t, in); snap.UIDNext != 2 || len(snap.Messages) != 1 {
		t.Fatal("flag changes must keep the UID")
	}
	// EXPUNGE removes only \Deleted messages.
	u2 := appendMsg(t, in, msg(2), `\Deleted`)
	gone, err := in.ExpungeDeleted(ctx, nil)
	if err != nil || !reflect.DeepEqual(gone, []uint32{u2}) {
		t.Fatalf("ExpungeDeleted = %v, %v", gone, err)
	}
}

func equal(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func testKeywords(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	in := mustFolder(t, s, "INBOX")
	uid := appendMsg(t, in, msg(1), "$Label1", `\Seen`, "Junk")
	want := []string{`\Seen`, "$Label1", "Junk"}
	if f := flagsOf(t, in, uid); !equal(f, want) {
		t.Fatalf("flags %v, want %v", f, want)
	}
	ctx := context.Background()
	// Changing system flags keeps the keywords.
	if _, err := in.StoreFlags(ctx, []uint32{uid}, mailstore.FlagAdd, []string{`\Answered`}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.StoreFlags(ctx, []uint32{uid}, mailstore.FlagRemove, []string{`\Answered`}); err != nil {
		t.Fatal(err)
	}
	if f := flagsOf(t, in, uid); !equal(f, want) {
		t.Fatalf("flags %v after a system flag change, want %v", f, want)
	}
	var kws []string
	for i := 0; i < 24; i++ {
		kws = append(kws, fmt.Sprintf("kw%02d", i))
	}
	if _, err := in.StoreFlags(ctx, []uint32{uid}, mailstore.FlagAdd, kws); err != nil {
		t.Fatalf("26 keywords: %v", err)
	}
	if _, err := in.StoreFlags(ctx, []uint32{uid}, mailstore.FlagAdd, []string{"one-too-many"}); !errors.Is(err, mailstore.ErrTooManyKeywords) {
		t.Fatalf("27th keyword: %v", err)
	}
	if f := flagsOf(t, in, uid); len(f) != 27 {
		t.Fatalf("%d flags after 26 keywords: %v", len(f), f)
	}
	if _, err := in.StoreFlags(ctx, []uint32{uid}, mailstore.FlagRemove, []string{"$Label1"}); err != nil {
		t.Fatal(err)
	}
	if f := flagsOf(t, in, uid); mailstore.MessageInfo(mailstore.MessageInfo{Flags: f}).HasFlag("$Label1") {
		t.Fatalf("$Label1 still set: %v", f)
	}
}

func testCopyMoveExpunge(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	ctx := context.Background()
	if err := s.CreateFolder("Archive"); err != nil {
		t.Fatal(err)
	}
	in := mustFolder(t, s, "INBOX")
	ar := mustFolder(t, s, "Archive")
	for i := 1; i <= 4; i++ {
		appendMsg(t, in, msg(i), "k1")
	}
	appendMsg(t, ar, msg(100))
	pairs, err := in.Copy(ctx, []uint32{3, 1, 42}, ar)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pairs, []mailstore.UIDPair{{Src: 1, Dst: 2}, {Src: 3, Dst: 3}}) {
		t.Fatalf("copy pairs %v", pairs)
	}
	if got := readUID(t, ar, 3); got != msg(3) {
		t.Fatalf("copied body %q", got)
	}
	m, _ := mustSnap(t, ar).Lookup(2)
	if !m.InternalDate.Equal(date) || !equal(m.Flags, []string{"k1"}) {
		t.Fatalf("copy lost date or keyword: %+v", m)
	}
	pairs, err = in.Move(ctx, []uint32{2, 4}, ar)
	if err != nil || len(pairs) != 2 || pairs[0].Dst != 4 || pairs[1].Dst != 5 {
		t.Fatalf("move %v, %v", pairs, err)
	}
	snap := mustSnap(t, in)
	if len(snap.Messages) != 2 || snap.Messages[0].UID != 1 || snap.Messages[1].UID != 3 {
		t.Fatalf("INBOX after move: %+v", snap.Messages)
	}
	gone, err := ar.Expunge(ctx, []uint32{1, 5, 99})
	if err != nil || !reflect.DeepEqual(gone, []uint32{1, 5}) {
		t.Fatalf("expunge %v, %v", gone, err)
	}
	// UIDs are never reused, not even the highest expunged one.
	if uid := appendMsg(t, ar, msg(9)); uid != 6 {
		t.Fatalf("UID after expunge %d, want 6", uid)
	}
	// The source of a copy is unaffected by flag changes of the copy.
	if _, err := ar.StoreFlags(ctx, []uint32{2}, mailstore.FlagAdd, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	if f := flagsOf(t, in, 1); !equal(f, []string{"k1"}) {
		t.Fatalf("source flags changed: %v", f)
	}
}

func testFolders(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	for _, n := range []string{"a", "a/b", "Grüße", "Sent", "junk"} {
		if err := s.CreateFolder(n); err != nil {
			t.Fatalf("create %q: %v", n, err)
		}
	}
	if err := s.CreateFolder("a"); !errors.Is(err, mailstore.ErrFolderExists) {
		t.Fatalf("create twice: %v", err)
	}
	for _, bad := range []string{"", "a.b", "a//b", "/a", "a/"} {
		if err := s.CreateFolder(bad); !errors.Is(err, mailstore.ErrInvalidFolderName) {
			t.Fatalf("create %q: %v", bad, err)
		}
	}
	names := func() []string {
		fs, err := s.Folders()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
			if f.Name == "junk" && f.SpecialUse != `\Junk` || f.Name == "Sent" && f.SpecialUse != `\Sent` {
				t.Fatalf("special use of %s: %q", f.Name, f.SpecialUse)
			}
		}
		return out
	}
	if got := names(); !reflect.DeepEqual(got, []string{"INBOX", "Grüße", "Sent", "a", "a/b", "junk"}) {
		t.Fatalf("folders %v", got)
	}
	a := mustFolder(t, s, "a/b")
	uid := appendMsg(t, a, msg(1))
	uv := a.UIDValidity()
	if err := s.Subscribe("a/b"); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameFolder("a", "x"); err != nil {
		t.Fatal(err)
	}
	if got := names(); !reflect.DeepEqual(got, []string{"INBOX", "Grüße", "Sent", "junk", "x", "x/b"}) {
		t.Fatalf("after rename: %v", got)
	}
	xb := mustFolder(t, s, "x/b")
	if snap := mustSnap(t, xb); snap.UIDValidity != uv || len(snap.Messages) != 1 || snap.Messages[0].UID != uid {
		t.Fatalf("renamed folder: %+v", snap)
	}
	// Subscriptions stay under the old name, as in dovecot.
	if subs, _ := s.Subscriptions(); !reflect.DeepEqual(subs, []string{"a/b"}) {
		t.Fatalf("subscriptions after rename: %v", subs)
	}
	if _, err := s.Folder("a/b"); !errors.Is(err, mailstore.ErrNoSuchFolder) {
		t.Fatalf("old name: %v", err)
	}
	if err := s.DeleteFolder("x/b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFolder("INBOX"); !errors.Is(err, mailstore.ErrInboxOp) {
		t.Fatalf("delete INBOX: %v", err)
	}
	if err := s.DeleteFolder("nope"); !errors.Is(err, mailstore.ErrNoSuchFolder) {
		t.Fatalf("delete missing: %v", err)
	}
	if err := s.CreateFolder("x/b"); err != nil {
		t.Fatal(err)
	}
	if nb := mustFolder(t, s, "x/b"); nb.UIDValidity() == uv {
		t.Fatal("recreated folder kept its UIDVALIDITY")
	}
}

func testSubscriptions(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	for _, n := range []string{"INBOX", "Grüße/x", "gone", "Grüße/x"} {
		if err := s.Subscribe(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Unsubscribe("gone"); err != nil {
		t.Fatal(err)
	}
	subs, err := s.Subscriptions()
	if err != nil || !reflect.DeepEqual(subs, []string{"INBOX", "Grüße/x"}) {
		t.Fatalf("subscriptions %v, %v", subs, err)
	}
	if err := s.SetSubscriptions([]string{"b", "a"}); err != nil {
		t.Fatal(err)
	}
	if subs, _ := s.Subscriptions(); !reflect.DeepEqual(subs, []string{"b", "a"}) {
		t.Fatalf("after set: %v", subs)
	}
}

func recv(t *testing.T, ch <-chan mailstore.Change) mailstore.Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change event within 5s")
	}
	return mailstore.Change{}
}

func testEvents(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	ctx := context.Background()
	in := mustFolder(t, s, "INBOX")
	ch, stop := s.Watch("INBOX")
	defer stop()
	uid := appendMsg(t, in, msg(1))
	if c := recv(t, ch); c.Kind != mailstore.ChangeNew || c.UID != uid || c.Folder != "INBOX" {
		t.Fatalf("event %+v", c)
	}
	if _, err := in.StoreFlags(ctx, []uint32{uid}, mailstore.FlagAdd, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, ch); c.Kind != mailstore.ChangeFlags || c.UID != uid || !equal(c.Flags, []string{`\Seen`}) {
		t.Fatalf("event %+v", c)
	}
	// A second Store of the process (same Hub) publishes to the same
	// watchers, once.
	s2, err := mailstore.Open(s.Root(), mailstore.Options{NoFsync: true, Hub: s.Hub()})
	if err != nil {
		t.Fatal(err)
	}
	in2 := mustFolder(t, s2, "INBOX")
	if _, err := in2.Expunge(ctx, []uint32{uid}); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, ch); c.Kind != mailstore.ChangeExpunge || c.UID != uid {
		t.Fatalf("event %+v", c)
	}
	if _, err := in.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-ch:
		t.Fatalf("duplicate event %+v", c)
	case <-time.After(50 * time.Millisecond):
	}
	// Stop closes the channel.
	stop()
	for range ch {
	}
	// Deleting and renaming folders are events of the old name.
	for _, n := range []string{"Doomed", "Moving"} {
		if err := s.CreateFolder(n); err != nil {
			t.Fatal(err)
		}
	}
	dch, dstop := s.Watch("Doomed")
	defer dstop()
	mch, mstop := s.Watch("Moving")
	defer mstop()
	if err := s.DeleteFolder("Doomed"); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, dch); c.Kind != mailstore.ChangeFolderDeleted || c.Folder != "Doomed" {
		t.Fatalf("event %+v", c)
	}
	if err := s.RenameFolder("Moving", "Moved"); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, mch); c.Kind != mailstore.ChangeFolderDeleted || c.Folder != "Moving" {
		t.Fatalf("event %+v", c)
	}
}

func testQuota(t *testing.T, ns NewStore) {
	s := ns(t, 300, 3)
	in := mustFolder(t, s, "INBOX")
	ctx := context.Background()
	appendMsg(t, in, strings.Repeat("x", 100))
	appendMsg(t, in, strings.Repeat("y", 100))
	if _, err := in.Append(ctx, strings.NewReader(strings.Repeat("z", 101)), nil, date); !errors.Is(err, mailstore.ErrOverQuota) {
		t.Fatalf("over byte quota: %v", err)
	}
	appendMsg(t, in, strings.Repeat("z", 50))
	if _, err := in.Append(ctx, strings.NewReader("a"), nil, date); !errors.Is(err, mailstore.ErrOverQuota) {
		t.Fatalf("over message quota: %v", err)
	}
	b, n, err := s.Usage()
	if err != nil || b != 250 || n != 3 {
		t.Fatalf("usage %d bytes %d messages, %v", b, n, err)
	}
	if _, err := in.Expunge(ctx, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if b, n, _ := s.Usage(); b != 150 || n != 2 {
		t.Fatalf("usage after expunge %d/%d", b, n)
	}
	us, err := s.FolderUsages()
	if err != nil || len(us) != 1 || us[0].Bytes != 150 || us[0].Messages != 2 {
		t.Fatalf("folder usages %+v, %v", us, err)
	}
	if snap := mustSnap(t, in); len(snap.Messages) != 2 {
		t.Fatalf("a refused append left %d messages", len(snap.Messages))
	}
}

func testImporter(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	ctx := context.Background()
	im, err := s.Importer("Old/Mail", 1234567)
	if err != nil {
		t.Fatal(err)
	}
	type in struct {
		uid   uint32
		flags []string
	}
	msgs := []in{{3, []string{`\Seen`, "$Forwarded"}}, {10, nil}, {11, []string{`\Answered`, `\Deleted`}}}
	for i, m := range msgs {
		body := msg(i)
		if err := im.Add(ctx, strings.NewReader(body), int64(len(body)), m.uid, m.flags, date.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Add(ctx, strings.NewReader("x"), 1, 3, nil, date); !errors.Is(err, mailstore.ErrUIDExists) {
		t.Fatalf("duplicate UID: %v", err)
	}
	if err := im.Add(ctx, strings.NewReader("xyz"), 5, 20, nil, date); err == nil {
		t.Fatal("size mismatch accepted")
	}
	im.SetUIDNext(50)
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	f := mustFolder(t, s, "Old/Mail")
	snap := mustSnap(t, f)
	if snap.UIDValidity != 1234567 || snap.UIDNext != 50 || len(snap.Messages) != 3 {
		t.Fatalf("imported: V%d N%d %d messages", snap.UIDValidity, snap.UIDNext, len(snap.Messages))
	}
	for i, m := range msgs {
		got := snap.Messages[i]
		want := append([]string(nil), m.flags...)
		sort.Slice(want, func(a, b int) bool {
			return strings.HasPrefix(want[a], `\`) && !strings.HasPrefix(want[b], `\`) || (strings.HasPrefix(want[a], `\`) == strings.HasPrefix(want[b], `\`) && want[a] < want[b])
		})
		if got.UID != m.uid || !equal(got.Flags, want) || !got.InternalDate.Equal(date.Add(time.Duration(i)*time.Hour)) {
			t.Fatalf("message %d: %+v", i, got)
		}
		if body := readUID(t, f, m.uid); body != msg(i) {
			t.Fatalf("body %q", body)
		}
	}
	if uid := appendMsg(t, f, msg(99)); uid != 50 {
		t.Fatalf("append after import got UID %d, want 50", uid)
	}
}

func testImporterResume(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	ctx := context.Background()
	in := mustFolder(t, s, "INBOX")
	// Dual delivery put two messages in first; one duplicates a message
	// of the copy and is removed.
	delivered := appendMsg(t, in, msg(100))
	dup := appendMsg(t, in, msg(1))
	im, err := s.Importer("INBOX", 777)
	if err != nil {
		t.Fatal(err)
	}
	others := im.Others()
	if len(others) != 2 || others[0].UID != delivered || others[1].UID != dup || others[0].Path == "" {
		t.Fatalf("others %+v", others)
	}
	if err := im.RemoveOther(others[1].Key); err != nil {
		t.Fatal(err)
	}
	if err := im.RemoveOther(others[1].Key); !errors.Is(err, mailstore.ErrNoSuchMessage) {
		t.Fatalf("second RemoveOther: %v", err)
	}
	if len(im.Others()) != 1 {
		t.Fatalf("others after removal: %+v", im.Others())
	}
	for uid := uint32(1); uid <= 2; uid++ {
		if err := im.Add(ctx, strings.NewReader(msg(int(uid))), -1, uid, nil, date); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Not checkpointed: lost when the converter is killed.
	if err := im.Add(ctx, strings.NewReader(msg(3)), -1, 3, nil, date); err != nil {
		t.Fatal(err)
	}
	if err := im.Abort(); err != nil { // the converter was killed
		t.Fatal(err)
	}
	im, err = s.Importer("INBOX", 777)
	if err != nil {
		t.Fatal(err)
	}
	if !im.Has(1) || !im.Has(2) || im.Has(3) || len(im.Existing()) != 2 {
		t.Fatalf("resume sees %v", im.Existing())
	}
	for uid := uint32(3); uid <= 4; uid++ {
		if err := im.Add(ctx, strings.NewReader(msg(int(uid))), -1, uid, []string{`\Seen`}, date); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	snap := mustSnap(t, in)
	var uids []uint32
	for _, m := range snap.Messages {
		uids = append(uids, m.UID)
	}
	if snap.UIDValidity != 777 || !reflect.DeepEqual(uids, []uint32{1, 2, 3, 4, 5}) {
		t.Fatalf("after resume: V%d %v", snap.UIDValidity, uids)
	}
	if body := readUID(t, in, 5); body != msg(100) {
		t.Fatalf("delivered message became %q", body)
	}
	// An empty import prepares a folder's UIDVALIDITY and UIDNEXT.
	im, err = s.Importer("Prepared", 4242)
	if err != nil {
		t.Fatal(err)
	}
	im.SetUIDNext(1000)
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	p := mustFolder(t, s, "Prepared")
	if p.UIDValidity() != 4242 || p.UIDNext() != 1000 {
		t.Fatalf("prepared V%d N%d", p.UIDValidity(), p.UIDNext())
	}
	if uid := appendMsg(t, p, msg(1)); uid != 1000 {
		t.Fatalf("first delivery into prepared folder: UID %d", uid)
	}
}

func testConcurrentAppend(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	in := mustFolder(t, s, "INBOX")
	const workers, each = 8, 15
	var mu sync.Mutex
	seen := map[uint32]string{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Half the workers use their own Store on the same tree.
			st := s
			if w%2 == 1 {
				var err error
				st, err = mailstore.Open(s.Root(), mailstore.Options{NoFsync: true, Hub: mailstore.NewHub()})
				if err != nil {
					errs <- err
					return
				}
			}
			f, err := st.Folder("INBOX")
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < each; i++ {
				body := fmt.Sprintf("worker %d message %d\n", w, i)
				uid, err := f.Append(context.Background(), strings.NewReader(body), nil, date)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := seen[uid]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("UID %d given to %q and %q", uid, prev, body)
					return
				}
				seen[uid] = body
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	snap := mustSnap(t, in)
	if len(snap.Messages) != workers*each {
		t.Fatalf("%d messages, want %d", len(snap.Messages), workers*each)
	}
	for i, m := range snap.Messages {
		if m.UID != uint32(i+1) {
			t.Fatalf("UIDs not dense: position %d has %d", i, m.UID)
		}
		if body := readUID(t, in, m.UID); body != seen[m.UID] {
			t.Fatalf("uid %d: %q, want %q", m.UID, body, seen[m.UID])
		}
	}
}

func testClaimRecent(t *testing.T, ns NewStore) {
	s := ns(t, 0, 0)
	in := mustFolder(t, s, "INBOX")
	ctx := context.Background()
	u1 := appendMsg(t, in, msg(1))
	u2 := appendMsg(t, in, msg(2), `\Flagged`)
	// A message appended with flags goes to cur/ but is \Recent all the
	// same, as in dovecot (whose index, not new/, says so).
	got, err := in.ClaimRecent(ctx)
	if err != nil || !reflect.DeepEqual(got, []uint32{u1, u2}) {
		t.Fatalf("ClaimRecent %v, %v (want [%d %d])", got, err, u1, u2)
	}
	if got, _ := in.ClaimRecent(ctx); len(got) != 0 {
		t.Fatalf("claimed twice: %v", got)
	}
	snap := mustSnap(t, in)
	for _, m := range snap.Messages {
		if m.Recent {
			t.Fatalf("uid %d still recent", m.UID)
		}
	}
	if b := readUID(t, in, u1); !bytes.Equal([]byte(b), []byte(msg(1))) {
		t.Fatal("claimed message changed")
	}
}
