package imap

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestCondStore: RFC 7162 CONDSTORE with go-imap's client: HIGHESTMODSEQ,
// MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE (MODIFIED), SEARCH MODSEQ, STATUS,
// and MODSEQ in another session's unsolicited FETCH.
func TestCondStore(t *testing.T) {
	ts := startServer(t)
	c := ts.login(t, "alice", nil)
	if !c.Caps().Has(imap.CapCondStore) {
		t.Fatalf("no CONDSTORE in %v", c.Caps())
	}
	for i := 0; i < 3; i++ {
		appendMsg(t, c, "INBOX", testMessage(fmt.Sprintf("m%d", i), "x\r\n"))
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	hms0 := sel.HighestModSeq
	if hms0 == 0 {
		t.Fatalf("SELECT (CONDSTORE) gave no HIGHESTMODSEQ: %+v", sel)
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{ModSeq: true, UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.ModSeq == 0 || m.ModSeq > hms0 {
			t.Errorf("message %d MODSEQ %d, HIGHESTMODSEQ %d", m.SeqNum, m.ModSeq, hms0)
		}
	}

	// Other session changes message 2; this one sees MODSEQ with it.
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN alice pw-alice\r\nb SELECT INBOX (CONDSTORE)\r\n")
	rc.until("b ")
	stored, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].ModSeq <= hms0 {
		t.Fatalf("STORE response %+v: want MODSEQ above %d", stored, hms0)
	}
	ms2 := stored[0].ModSeq
	rc.send("c NOOP\r\n")
	lines := rc.until("c ")
	if want := fmt.Sprintf("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (%d))", ms2); lines[0] != want {
		t.Errorf("other session: %q, want %q", lines, want)
	}

	// CHANGEDSINCE returns only message 2.
	msgs, err = c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, ChangedSince: hms0}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].SeqNum != 2 || msgs[0].ModSeq != ms2 {
		t.Errorf("FETCH CHANGEDSINCE %d = %+v", hms0, msgs)
	}

	// UNCHANGEDSINCE: message 2 changed after hms0, message 1 did not.
	rc.send(fmt.Sprintf("d STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)\r\n", hms0))
	lines = rc.until("d ")
	joined := strings.Join(lines, "\n")
	if !strings.Contains(lines[len(lines)-1], "d OK [MODIFIED 2]") || !strings.Contains(joined, "* 1 FETCH") || strings.Contains(joined, "* 2 FETCH (FLAGS (\\Flagged \\Seen)") {
		t.Errorf("STORE UNCHANGEDSINCE: %q", lines)
	}

	// SEARCH MODSEQ.
	sr, err := c.Search(&imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: ms2}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := sr.AllSeqNums(); len(got) != 2 || got[0] != 1 || got[1] != 2 || sr.ModSeq < ms2 {
		t.Errorf("SEARCH MODSEQ %d = %v (MODSEQ %d)", ms2, got, sr.ModSeq)
	}

	// STATUS HIGHESTMODSEQ grows.
	st, err := c.Status("INBOX", &imap.StatusOptions{HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.HighestModSeq <= ms2 {
		t.Errorf("STATUS HIGHESTMODSEQ %d, want above %d", st.HighestModSeq, ms2)
	}

	// A restarted server keeps the folder's mod-sequences (mailmig-modseq):
	// nothing changed, so HIGHESTMODSEQ and the message's MODSEQ stay.
	srv2 := New(ts.srv.opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv2.Serve(ln, ListenerOptions{Trusted: true})
	defer srv2.Close()
	rc2 := dialRaw(t, ln.Addr().String())
	rc2.send("a LOGIN alice pw-alice\r\nb EXAMINE INBOX\r\nc FETCH 1 MODSEQ\r\n")
	var hms2, m1 uint64
	for _, l := range rc2.until("c ") {
		fmt.Sscanf(l, "* OK [HIGHESTMODSEQ %d]", &hms2)
		fmt.Sscanf(l, "* 1 FETCH (MODSEQ (%d))", &m1)
	}
	if hms2 != st.HighestModSeq || m1 == 0 || m1 > hms2 {
		t.Errorf("after restart HIGHESTMODSEQ %d, MODSEQ %d; want HIGHESTMODSEQ %d kept", hms2, m1, st.HighestModSeq)
	}
	if err := c.Logout().Wait(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Error(err)
	}
}

// TestSearchRes: RFC 5182 SEARCH RETURN (SAVE) and "$".
func TestSearchRes(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN alice pw-alice\r\nb CREATE Later\r\n")
	rc.until("b ")
	for i := 0; i < 4; i++ {
		msg := fmt.Sprintf("Subject: s%d\r\n\r\nx\r\n", i)
		flags := ""
		if i%2 == 1 {
			flags = `(\Flagged) `
		}
		rc.send(fmt.Sprintf("c APPEND INBOX %s{%d+}\r\n%s\r\n", flags, len(msg), msg))
		rc.until("c ")
	}
	rc.send("d SELECT INBOX\r\ne SEARCH RETURN (SAVE) FLAGGED\r\n")
	rc.until("d ")
	if l := rc.until("e "); len(l) != 1 || !strings.HasPrefix(l[0], "e OK") {
		t.Errorf("SEARCH RETURN (SAVE): %q", l)
	}
	rc.send("f FETCH $ (UID)\r\ng SEARCH $ SUBJECT s3\r\nh UID COPY $ Later\r\n")
	lines := rc.until("h ")
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)", "* SEARCH 4", "h OK [COPYUID"} {
		if !strings.Contains(joined, want) {
			t.Errorf("using $: lacks %q in\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "* 1 FETCH") || strings.Contains(joined, "* 3 FETCH") {
		t.Errorf("$ matched unsaved messages:\n%s", joined)
	}
}

// TestQResync: RFC 7162 QRESYNC: SELECT (QRESYNC ...) answers VANISHED
// (EARLIER) and the changed flags; expunges become VANISHED; UID FETCH
// (CHANGEDSINCE n VANISHED).
func TestQResync(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN alice pw-alice\r\n")
	rc.until("a ")
	for i := 0; i < 5; i++ {
		msg := fmt.Sprintf("Subject: q%d\r\n\r\nx\r\n", i)
		rc.send(fmt.Sprintf("b APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
		rc.until("b ")
	}
	rc.send("c SELECT INBOX (QRESYNC (1 1))\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "c BAD") {
		t.Errorf("QRESYNC without ENABLE: %q", l)
	}
	rc.send("d ENABLE QRESYNC\r\ne SELECT INBOX\r\n")
	var uidValidity uint32
	var hms uint64
	for _, l := range rc.until("e ") {
		fmt.Sscanf(l, "* OK [UIDVALIDITY %d]", &uidValidity)
		fmt.Sscanf(l, "* OK [HIGHESTMODSEQ %d]", &hms)
	}
	// Another session flags 2 and expunges 4.
	other := dialRaw(t, ts.addr)
	other.send("a LOGIN alice pw-alice\r\nb SELECT INBOX\r\nc STORE 2 +FLAGS (\\Flagged)\r\nd STORE 4 +FLAGS (\\Deleted)\r\ne EXPUNGE\r\n")
	other.until("e ")
	rc.send("f NOOP\r\n")
	lines := strings.Join(rc.until("f "), "\n")
	if !strings.Contains(lines, "* VANISHED 4") || strings.Contains(lines, "EXPUNGE") {
		t.Errorf("NOOP after another session's expunge, QRESYNC on:\n%s", lines)
	}
	rc.send(fmt.Sprintf("g UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n", hms))
	lines = strings.Join(rc.until("g "), "\n")
	for _, want := range []string{"* VANISHED (EARLIER) 4", "UID 2 FLAGS (\\Flagged", "MODSEQ ("} {
		if !strings.Contains(lines, want) {
			t.Errorf("UID FETCH (CHANGEDSINCE VANISHED) lacks %q:\n%s", want, lines)
		}
	}
	if strings.Contains(lines, "UID 1 ") || strings.Contains(lines, "UID 3 ") {
		t.Errorf("unchanged messages fetched:\n%s", lines)
	}
	// A client that knew UIDs 1:5 at modseq hms reselects.
	rc.send(fmt.Sprintf("h UNSELECT\r\ni SELECT INBOX (QRESYNC (%d %d 1:5))\r\n", uidValidity, hms))
	rc.until("h ")
	lines = strings.Join(rc.until("i "), "\n")
	for _, want := range []string{"* VANISHED (EARLIER) 4", "* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (", "i OK [READ-WRITE]"} {
		if !strings.Contains(lines, want) {
			t.Errorf("SELECT (QRESYNC) lacks %q:\n%s", want, lines)
		}
	}
	if strings.Contains(lines, "UID 1 ") || strings.Contains(lines, "UID 3 ") {
		t.Errorf("SELECT (QRESYNC) sent unchanged messages:\n%s", lines)
	}
}
