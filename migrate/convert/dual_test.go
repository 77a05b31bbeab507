package convert

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
	"mailmig/migrate/mbox"
	"mailmig/migrate/spool"
)

// rawMessages are delivered as an MTA hands them over: CRLF, body lines
// starting "From " (quoted in the spool), no final newline.
func rawMessage(i int) []byte {
	return []byte(fmt.Sprintf("Return-Path: <x@example.org>\r\nFrom: x@example.org\r\nTo: alice@example.edu\r\nSubject: dual %d\r\nMessage-ID: <dual%d@example.org>\r\n\r\nFrom the road, number %d.\r\n>From quoted\r\n\r\nbye", i, i, i))
}

// dualDeliver does what `mailmig deliver` does in dual mode: append to
// the old spool and deliver to the new store (into folder).
func dualDeliver(t *testing.T, st *mailstore.Store, inbox, folder string, msg []byte, spoolOnly bool) {
	t.Helper()
	date := time.Date(2009, 10, 20, 8, 0, 0, 0, time.UTC)
	if _, err := spool.Append(context.Background(), inbox, "x@example.org", date, msg, spool.Options{NoFsync: true}); err != nil {
		t.Fatal(err)
	}
	if spoolOnly {
		return
	}
	if folder != "INBOX" {
		if err := st.CreateFolder(folder); err != nil && err != mailstore.ErrFolderExists && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
	}
	f, err := st.Folder(folder)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append(context.Background(), bytes.NewReader(msg), nil, date); err != nil {
		t.Fatal(err)
	}
}

func snapshotOf(t *testing.T, st *mailstore.Store, name string) *mailstore.Snapshot {
	t.Helper()
	f, err := st.Folder(name)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// countHashes returns ContentHash -> count over the folder.
func countHashes(t *testing.T, snap *mailstore.Snapshot) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, msg := range snap.Messages {
		h, err := hashFile(msg.Path)
		if err != nil {
			t.Fatal(err)
		}
		m[h]++
	}
	return m
}

// TestDualDeliveryKeptOnce walks through Prepare, dual delivery, the copy
// and the incremental cutover pass.
func TestDualDeliveryKeptOnce(t *testing.T) {
	tree := genTree(t, 5, false)
	maildir := filepath.Join(t.TempDir(), "Maildir")
	o := optsFor(tree, maildir)
	ctx := context.Background()

	src := tree.Folders["INBOX"]
	lastUID := src.Messages[len(src.Messages)-1].UID
	p, err := Prepare(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if p.UIDValidity != src.UIDValidity || p.UIDNext <= lastUID {
		t.Fatalf("Prepare: %+v, source UIDVALIDITY %d last UID %d", p, src.UIDValidity, lastUID)
	}
	if p2, err := Prepare(ctx, o); err != nil || *p2 != *p {
		t.Fatalf("Prepare again: %+v %v", p2, err)
	}
	st, err := mailstore.Open(maildir, mailstore.Options{NoFsync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Dual delivery: four to INBOX, one filed by Sieve into junk.
	for i := 0; i < 5; i++ {
		folder := "INBOX"
		if i == 2 {
			folder = "junk"
		}
		dualDeliver(t, st, tree.Inbox, folder, rawMessage(i), false)
	}
	delivered := snapshotOf(t, st, "INBOX")
	for _, m := range delivered.Messages {
		if m.UID < p.UIDNext {
			t.Errorf("delivery gave UID %d, below the prepared UIDNEXT %d", m.UID, p.UIDNext)
		}
	}

	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	in := rep.Folders[0]
	if in.Name != "INBOX" || in.KeptOnce != 5 || in.Copied != len(src.Messages) {
		t.Fatalf("INBOX report: %+v", in)
	}
	snap := snapshotOf(t, st, "INBOX")
	if len(snap.Messages) != len(src.Messages)+4 || snap.UIDValidity != src.UIDValidity {
		t.Fatalf("INBOX has %d messages (want %d), UIDVALIDITY %d", len(snap.Messages), len(src.Messages)+4, snap.UIDValidity)
	}
	for i, w := range src.Messages {
		if snap.Messages[i].UID != w.UID {
			t.Errorf("message %d: UID %d, want the source's %d", i, snap.Messages[i].UID, w.UID)
		}
	}
	for h, n := range countHashes(t, snap) {
		if n > 1 {
			t.Errorf("hash %s stored %d times", h, n)
		}
	}
	if n := len(snapshotOf(t, st, "junk").Messages); n != 1 {
		t.Errorf("junk has %d messages", n)
	}

	// Cutover: two more by dual delivery, one that reached only the old
	// spool; the user has deleted a copied message in the new store.
	dualDeliver(t, st, tree.Inbox, "INBOX", rawMessage(10), false)
	dualDeliver(t, st, tree.Inbox, "INBOX", rawMessage(11), false)
	dualDeliver(t, st, tree.Inbox, "INBOX", rawMessage(12), true)
	f, _ := st.Folder("INBOX")
	gone := snap.Messages[0].UID
	if _, err := f.Expunge(ctx, []uint32{gone}); err != nil {
		t.Fatal(err)
	}
	o.Incremental = true
	for pass := 0; pass < 2; pass++ {
		rep, err = Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		wantCopied := 1
		if pass == 1 {
			wantCopied = 0
		}
		if in := rep.Folders[0]; in.Copied != wantCopied {
			t.Errorf("incremental pass %d: copied %d, want %d (%+v)", pass, in.Copied, wantCopied, in)
		}
		for _, f := range rep.Folders[1:] {
			if f.Copied != 0 || f.AlreadyPresent != f.Messages {
				t.Errorf("incremental pass %d: folder %q copied %d, already %d of %d", pass, f.Name, f.Copied, f.AlreadyPresent, f.Messages)
			}
		}
	}
	snap = snapshotOf(t, st, "INBOX")
	if len(snap.Messages) != len(src.Messages)-1+4+3 {
		t.Errorf("after cutover INBOX has %d messages, want %d", len(snap.Messages), len(src.Messages)-1+4+3)
	}
	if _, ok := snap.Lookup(gone); ok {
		t.Errorf("expunged UID %d came back", gone)
	}
	for h, n := range countHashes(t, snap) {
		if n > 1 {
			t.Errorf("after cutover hash %s stored %d times", h, n)
		}
	}
}

// TestContentHashSpoolVsStore: a message appended to the spool (framed,
// quoted, LF) and read back hashes like the raw message delivered to the
// new store.
func TestContentHashSpoolVsStore(t *testing.T) {
	cases := []string{
		string(rawMessage(1)),
		"Subject: x\n\nFrom here\n>From there\n>>From everywhere\n",
		"Subject: x\r\nStatus: RO\r\n\r\nbody\r\n\r\n\r\n",
		"Subject: no body",
		"X-UID: 5\nSubject: y\nContent-Length: 99\n\n\n\nFrom \n",
	}
	for _, raw := range cases {
		checkSpoolHash(t, []byte(raw))
	}
	if ContentHash([]byte("Subject: a\n\nx\n")) == ContentHash([]byte("Subject: a\n\ny\n")) {
		t.Error("different messages hash the same")
	}
}

func checkSpoolHash(t *testing.T, raw []byte) {
	t.Helper()
	framed := spool.Format("x@example.org", time.Date(2009, 1, 2, 3, 4, 5, 0, time.UTC), raw)
	r := mbox.NewReader(bytes.NewReader(framed), mbox.Options{Location: time.UTC})
	if _, err := r.Next(); err != nil {
		t.Fatalf("%q framed as %q: %v", raw, framed, err)
	}
	stored, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := ContentHash(stored), ContentHash(raw); a != b {
		t.Errorf("raw %q\nspool %q\nhash differently", raw, stored)
	}
	// Incremental hashing in odd pieces gives the same.
	h := NewContentHasher()
	for i := 0; i < len(raw); i += 3 {
		h.Write(raw[i:min(i+3, len(raw))])
	}
	if h.Sum() != ContentHash(raw) {
		t.Errorf("%q: piecewise hash differs", raw)
	}
}

func FuzzContentHash(f *testing.F) {
	f.Add([]byte(rawMessage(1)))
	f.Add([]byte("Subject: x\n\nFrom here\n>From there\n"))
	f.Add([]byte("Status: RO\r\n X-cont\r\n\r\nbody\r"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if bytes.IndexByte(raw, 0) >= 0 {
			return
		}
		checkSpoolHash(t, raw)
	})
}
