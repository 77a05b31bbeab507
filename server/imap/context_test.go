package imap

import (
	"slices"
	"strings"
	"testing"
)

// TestUpdateDiff: the ADDTO/REMOVEFROM computation of RFC 5267 §4.3/§4.4.
func TestUpdateDiff(t *testing.T) {
	for _, tc := range []struct {
		old, cur, added, removed []uint32
	}{
		{nil, nil, nil, nil},
		{nil, []uint32{1, 2}, []uint32{1, 2}, nil},
		{[]uint32{1, 2}, nil, nil, []uint32{1, 2}},
		{[]uint32{1, 3, 5}, []uint32{1, 3, 5}, nil, nil},
		{[]uint32{1, 3, 5}, []uint32{2, 3, 6, 7}, []uint32{2, 6, 7}, []uint32{1, 5}},
		{[]uint32{4}, []uint32{1, 2, 3}, []uint32{1, 2, 3}, []uint32{4}},
	} {
		a, r := updateDiff(tc.old, tc.cur)
		if !slices.Equal(a, tc.added) || !slices.Equal(r, tc.removed) {
			t.Errorf("updateDiff(%v, %v) = %v, %v; want %v, %v", tc.old, tc.cur, a, r, tc.added, tc.removed)
		}
	}
}

// TestSearchUpdate: one session keeps a UID SEARCH RETURN (UPDATE), the
// other appends, flags and expunges; the first is told ADDTO/REMOVEFROM
// (RFC 5267 §4.2–4.5, the shape of §4.3's example), refusals carry
// NOUPDATE, and CANCELUPDATE stops the notifications.
func TestSearchUpdate(t *testing.T) {
	ts := startServer(t)
	a, b := dialRaw(t, ts.addr), dialRaw(t, ts.addr)
	for _, rc := range []*rawConn{a, b} {
		rc.send("l LOGIN alice pw-alice\r\n")
		rc.until("l ")
	}
	if l := strings.Join(func() []string { a.send("c CAPABILITY\r\n"); return a.until("c ") }(), "\n"); !strings.Contains(l, " CONTEXT=SEARCH") || strings.Contains(l, "CONTEXT=SORT") {
		t.Errorf("capabilities: %q", l)
	}
	msg := "Subject: x\r\n\r\nx\r\n"
	app := func(rc *rawConn) {
		rc.send("p APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
		rc.until("p ")
	}
	app(b)
	app(b)
	a.send("s SELECT INBOX\r\n")
	a.until("s OK")
	b.send("s SELECT INBOX\r\n")
	b.until("s OK")
	expect := func(rc *rawConn, cmd string, want ...string) {
		t.Helper()
		rc.send(cmd + "\r\n")
		got := rc.until(strings.Fields(cmd)[0] + " ")
		var esearch []string
		for _, l := range got {
			if strings.HasPrefix(l, "* ESEARCH") || strings.Contains(l, "NOUPDATE") {
				esearch = append(esearch, l)
			}
		}
		if !slices.Equal(esearch, want) {
			t.Errorf("%s: got %q, want ESEARCH/NOUPDATE lines %q", cmd, got, want)
		}
	}
	expect(a, "B01 UID SEARCH RETURN (UPDATE) UNSEEN", `* ESEARCH (TAG "B01") UID`)
	expect(a, "B02 SEARCH RETURN (UPDATE) ALL", `* ESEARCH (TAG "B02")`, `B02 OK [NOUPDATE "B02"] SEARCH completed, no updates`)
	expect(a, "B03 UID SEARCH RETURN (UPDATE COUNT) ALL", `* ESEARCH (TAG "B03") UID COUNT 2`, `B03 OK [NOUPDATE "B03"] SEARCH completed, no updates`)

	app(b)
	expect(a, "n1 NOOP", `* ESEARCH (TAG "B01") UID ADDTO (0 3)`)
	b.send("f UID STORE 1 +FLAGS (\\Seen)\r\n")
	b.until("f ")
	b.send("f UID STORE 2 +FLAGS (\\Deleted)\r\n")
	b.until("f ")
	b.send("e EXPUNGE\r\n")
	b.until("e ")
	app(b)
	expect(a, "n2 NOOP", `* ESEARCH (TAG "B01") UID REMOVEFROM (0 1:2)`, `* ESEARCH (TAG "B01") UID ADDTO (0 4)`)
	expect(a, "x CANCELUPDATE \"B01\"")
	app(b)
	expect(a, "n3 NOOP")
	a.send("y CANCELUPDATE \"B01\"\r\n")
	if l := a.until("y "); !strings.HasPrefix(l[len(l)-1], "y BAD") {
		t.Errorf("CANCELUPDATE of a cancelled search: %q, want BAD", l)
	}
}
