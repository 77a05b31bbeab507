package imap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailmig/mailstore"
)

// idleWatcher collects unilateral EXISTS and EXPUNGE of an IDLEing client.
type idleWatcher struct {
	exists  chan uint32
	expunge chan uint32
	fetch   chan uint32
}

func newIdleWatcher() (*idleWatcher, *imapclient.UnilateralDataHandler) {
	w := &idleWatcher{exists: make(chan uint32, 100), expunge: make(chan uint32, 100), fetch: make(chan uint32, 100)}
	return w, &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				w.exists <- *d.NumMessages
			}
		},
		Expunge: func(seq uint32) { w.expunge <- seq },
		Fetch: func(m *imapclient.FetchMessageData) {
			m.Collect()
			w.fetch <- m.SeqNum
		},
	}
}

func waitFor[T any](t *testing.T, ch <-chan T, within time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("no %s within %v", what, within)
	}
	var zero T
	return zero
}

// TestIdle: an IDLEing client sees, within a second, a message appended
// by another session (same process, via the hub) and one delivered by
// another process (found by the folder's poller), then an expunge and a
// flag change.
func TestIdle(t *testing.T) {
	ts := startServer(t)
	w, h := newIdleWatcher()
	idler := ts.login(t, "alice", h)
	other := ts.login(t, "alice", nil)
	appendMsg(t, other, "INBOX", testMessage("m1", "1\r\n"))
	if _, err := idler.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}

	appendMsg(t, other, "INBOX", testMessage("m2", "2\r\n"))
	if n := waitFor(t, w.exists, time.Second, "EXISTS after APPEND by another session"); n != 2 {
		t.Errorf("EXISTS %d, want 2", n)
	}

	// Another process: its own Store and Hub.
	st := ts.store(t, "alice")
	f, err := st.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append(context.Background(), strings.NewReader("Subject: m3\n\n3\n"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := waitFor(t, w.exists, time.Second, "EXISTS after delivery by another process"); n != 3 {
		t.Errorf("EXISTS %d, want 3", n)
	}

	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if seq := waitFor(t, w.fetch, time.Second, "FETCH FLAGS after STORE by another session"); seq != 1 {
		t.Errorf("FETCH for %d, want 1", seq)
	}
	if _, err := other.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	if seq := waitFor(t, w.expunge, time.Second, "EXPUNGE by another session"); seq != 2 {
		t.Errorf("EXPUNGE %d, want 2", seq)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := idler.Mailbox().NumMessages; n != 2 {
		t.Errorf("idler counts %d messages, want 2", n)
	}
}

// TestConcurrentSessions: two sessions and a delivering process work on
// one mailbox at once; in the end every message is there exactly once,
// UIDs are unique and ascending, and an expunge in one session while
// another fetches leaves the fetching session consistent.
func TestConcurrentSessions(t *testing.T) {
	ts := startServer(t)
	const perWriter = 25
	a := ts.login(t, "bob", nil)
	b := ts.login(t, "bob", nil)
	st := ts.store(t, "bob")
	inbox, err := st.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*imapclient.Client{a, b} {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	uids := make(chan uint32, 3*perWriter)
	for wi, c := range []*imapclient.Client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				msg := testMessage(fmt.Sprintf("s%d-%d", wi, i), "x\r\n")
				cmd := c.Append("INBOX", int64(len(msg)), nil)
				cmd.Write([]byte(msg))
				cmd.Close()
				d, err := cmd.Wait()
				if err != nil {
					errs <- err
					return
				}
				uids <- uint32(d.UID)
				// Interleave reads with the writes.
				if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect(); err != nil {
					errs <- fmt.Errorf("fetch: %w", err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < perWriter; i++ {
			u, err := inbox.Append(context.Background(), strings.NewReader(fmt.Sprintf("Subject: d%d\n\nx\n", i)), nil, time.Time{})
			if err != nil {
				errs <- err
				return
			}
			uids <- u
		}
	}()
	wg.Wait()
	close(errs)
	close(uids)
	for err := range errs {
		t.Fatal(err)
	}
	var all []uint32
	for u := range uids {
		all = append(all, u)
	}
	slices.Sort(all)
	if len(slices.Compact(slices.Clone(all))) != 3*perWriter {
		t.Fatalf("UIDs handed out twice: %v", all)
	}

	// Both sessions converge on the same view.
	for i, c := range []*imapclient.Client{a, b} {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for _, m := range msgs {
			got = append(got, uint32(m.UID))
		}
		if !slices.Equal(got, all) {
			t.Errorf("session %d sees UIDs %v, want %v", i, got, all)
		}
		if n := c.Mailbox().NumMessages; n != uint32(len(all)) {
			t.Errorf("session %d counts %d messages, want %d", i, n, len(all))
		}
	}

	// Expunge half in a while b fetches all bodies.
	var del imap.UIDSet
	for _, u := range all[:len(all)/2] {
		del.AddNum(imap.UID(u))
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 5; i++ {
			if _, err := b.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if _, err := a.Store(del, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	exp, err := a.Expunge().Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != len(all)/2 {
		t.Errorf("expunged %d, want %d", len(exp), len(all)/2)
	}
	if err := <-done; err != nil {
		t.Fatalf("fetch during expunge: %v", err)
	}
	if err := b.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if n := b.Mailbox().NumMessages; n != uint32(len(all)-len(all)/2) {
		t.Errorf("after expunge b counts %d, want %d", n, len(all)-len(all)/2)
	}
	// A new message after the expunge gets a UID never used before.
	u := appendMsg(t, a, "INBOX", testMessage("after", "x\r\n"))
	if uint32(u) <= all[len(all)-1] {
		t.Errorf("UID %d reused (max before %d)", u, all[len(all)-1])
	}
}

// TestShutdownFinishesAppend: Shutdown during an APPEND lets it complete,
// then ends the session with BYE.
func TestShutdownFinishesAppend(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN carol pw-carol\r\n")
	rc.until("a ")
	msg := "Subject: slow\r\n\r\n" + strings.Repeat("z", 1000) + "\r\n"
	rc.send(fmt.Sprintf("b APPEND INBOX {%d}\r\n", len(msg)))
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("continuation: %q", l)
	}
	rc.send(msg[:100])
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- ts.srv.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	rc.send(msg[100:] + "\r\n")
	lines := rc.until("* BYE")
	if !strings.HasPrefix(lines[0], "b OK [APPENDUID") {
		t.Errorf("APPEND during shutdown: %q", lines)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	st := ts.store(t, "carol")
	f, _ := st.Folder("INBOX")
	snap, err := f.Snapshot(context.Background())
	if err != nil || len(snap.Messages) != 1 {
		t.Errorf("after shutdown INBOX has %v messages (%v), want 1", snap, err)
	}
}

// TestSharedFolders: ACL commands and the shared namespace.
func TestSharedFolders(t *testing.T) {
	ts := startServer(t)
	alice := ts.login(t, "alice", nil)
	if err := alice.Create("Projects", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, alice, "Projects", testMessage("plan", "the plan\r\n"))
	if err := alice.SetACL("Projects", "bob", imap.RightModificationReplace, imap.RightSet("lr")).Wait(); err != nil {
		t.Fatal(err)
	}
	acl, err := alice.GetACL("Projects").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if string(acl.Rights["bob"]) != "lr" || string(acl.Rights["alice"]) != withObsolete(allRights) {
		t.Errorf("GETACL = %+v", acl.Rights)
	}
	my, err := alice.MyRights("Projects").Wait()
	if err != nil || string(my.Rights) != withObsolete(allRights) {
		t.Errorf("owner MYRIGHTS = %+v, %v", my, err)
	}

	bob := ts.login(t, "bob", nil)
	list, err := bob.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	if !slices.Contains(names, "shared/alice/Projects") || slices.Contains(names, "shared/alice/INBOX") {
		t.Errorf("bob's LIST = %v", names)
	}
	my, err = bob.MyRights("shared/alice/Projects").Wait()
	if err != nil || string(my.Rights) != "lr" {
		t.Errorf("bob MYRIGHTS = %+v, %v", my, err)
	}
	sel, err := bob.Select("shared/alice/Projects", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 {
		t.Errorf("bob selects %d messages", sel.NumMessages)
	}
	msgs, err := bob.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "plan" {
		t.Errorf("bob FETCH = %v, %v", msgs, err)
	}
	// No 'i': APPEND refused; no 'w'/'s': STORE changes nothing.
	cmd := bob.Append("shared/alice/Projects", 10, nil)
	cmd.Write([]byte("Subject: x"))
	cmd.Close()
	if _, err := cmd.Wait(); err == nil {
		t.Error("APPEND without the i right succeeded")
	}
	if err := bob.SetACL("shared/alice/Projects", "carol", imap.RightModificationAdd, imap.RightSet("l")).Wait(); err == nil {
		t.Error("SETACL without the a right succeeded")
	}
	if _, err := bob.Select("shared/alice/INBOX", nil).Wait(); err == nil {
		t.Error("bob selected alice's INBOX")
	}
	carol := ts.login(t, "carol", nil)
	if _, err := carol.Select("shared/alice/Projects", nil).Wait(); err == nil {
		t.Error("carol selected a folder not shared with her")
	}
	if err := alice.SetACL("Projects", "bob", imap.RightModificationRemove, imap.RightSet("r")).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetACL("Projects", "bob", imap.RightModificationRemove, imap.RightSet("l")).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err = bob.List("", "shared/*", nil).Collect()
	if err != nil || len(list) != 0 {
		t.Errorf("after revoking, bob's shared LIST = %v, %v", list, err)
	}
}

// TestStoreUIDsAppearInOrder checks the store property the server's view
// relies on (RFC 9051 §2.3.1.1: UIDs are assigned in strictly ascending
// order as messages are added): while two processes append, no snapshot
// may show a UID lower than one an earlier snapshot already showed. A
// session cannot insert such a message into its sequence numbers, so it
// would stay invisible until the folder is selected again.
func TestStoreUIDsAppearInOrder(t *testing.T) {
	dir := t.TempDir()
	open := func() *mailstore.Folder {
		st, err := mailstore.Open(dir, mailstore.Options{CreateRoot: true, NoFsync: true, Hub: mailstore.NewHub()})
		if err != nil {
			t.Fatal(err)
		}
		f, err := st.Folder("INBOX")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	var wg sync.WaitGroup
	for _, f := range []*mailstore.Folder{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := f.Append(context.Background(), strings.NewReader(fmt.Sprintf("Subject: %d\n\nx\n", i)), nil, time.Time{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[uint32]bool{}
	var maxSeen uint32
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		snap, err := a.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range snap.Messages {
			if !seen[m.UID] && m.UID < maxSeen {
				t.Fatalf("UID %d appeared after UID %d had been seen", m.UID, maxSeen)
			}
			seen[m.UID] = true
			maxSeen = max(maxSeen, m.UID)
		}
	}
}
