package imap

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
	if l := strings.Join(func() []string { a.send("c CAPABILITY\r\n"); return a.until("c ") }(), "\n"); !strings.Contains(l, " CONTEXT=SEARCH") {
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
	expect(a, "n2 NOOP", `* ESEARCH (TAG "B01") UID REMOVEFROM (0 2)`, `* ESEARCH (TAG "B01") UID REMOVEFROM (0 1) ADDTO (0 4)`)
	// During IDLE too (§4.3: whenever the server may send updates).
	a.send("i IDLE\r\n")
	a.until("+ ")
	app(b)
	if l := a.until("* ESEARCH"); l[len(l)-1] != `* ESEARCH (TAG "B01") UID ADDTO (0 5)` {
		t.Errorf("during IDLE: %q", l)
	}
	a.send("DONE\r\n")
	a.until("i OK")
	expect(a, "x CANCELUPDATE \"B01\"")
	app(b)
	expect(a, "n3 NOOP")
	a.send("y CANCELUPDATE \"B01\"\r\n")
	if l := a.until("y "); !strings.HasPrefix(l[len(l)-1], "y NO") {
		t.Errorf("CANCELUPDATE of a cancelled search: %q, want NO (as dovecot)", l)
	}
}

// lineConn is one IMAP session over any pipe: mailmig's socket or a
// dovecot imap process's stdin/stdout.
type lineConn struct {
	t *testing.T
	w io.Writer
	r *bufio.Reader
}

// do sends a tagged command and returns its untagged responses and the
// status word of its tagged answer with the response code, if any.
func (lc *lineConn) do(tag, cmd string) []string {
	lc.t.Helper()
	if _, err := io.WriteString(lc.w, tag+" "+cmd+"\r\n"); err != nil {
		lc.t.Fatal(err)
	}
	var out []string
	for i := 0; i < 1000; i++ {
		l, err := lc.r.ReadString('\n')
		if err != nil {
			lc.t.Fatalf("%s %s: %v (%q)", tag, cmd, err, out)
		}
		l = strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(l, tag+" ") {
			// The status word, and a response code if any.
			f := strings.Fields(l)
			if len(f) > 2 && strings.HasPrefix(f[2], "[") {
				return append(out, f[1]+" "+l[strings.Index(l, "["):strings.Index(l, "]")+1])
			}
			return append(out, f[1])
		}
		out = append(out, l)
	}
	lc.t.Fatalf("%s %s: no tagged answer", tag, cmd)
	return nil
}

// dovecotPair starts two dovecot imap processes as alice on one fresh
// Maildir, as two sessions of one user.
func dovecotPair(t *testing.T) (*lineConn, *lineConn) {
	t.Helper()
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install dovecot-imapd", dovecotIMAP)
	}
	dir, err := os.MkdirTemp("", "mailmig-dovecot-") // t.TempDir's parent is closed to nobody
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "%u", "Maildir")+"\nnamespace inbox {\n  separator = /\n  inbox = yes\n}\n"), 0o644)
	start := func() *lineConn {
		d := startDovecotIMAP(t, dir, conf, nil)
		kill := time.AfterFunc(60*time.Second, func() { d.cmd.Process.Kill() })
		t.Cleanup(func() { kill.Stop() })
		stdin, stdout := d.stdin, d.stdout
		lc := &lineConn{t: t, w: stdin, r: bufio.NewReader(stdout)}
		if l, err := lc.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* PREAUTH") {
			t.Fatalf("dovecot greeting %q: %v", l, err)
		}
		return lc
	}
	return start(), start()
}

// TestSearchUpdateDovecot: the same two-session script against mailmig and
// dovecot; the watching session's answers must be equal.
func TestSearchUpdateDovecot(t *testing.T) {
	msg := "Subject: x\r\n\r\nx\r\n"
	app := "APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg
	script := []struct {
		who int // 0 watches, 1 changes
		cmd string
	}{
		{1, app}, {1, app},
		{1, "SELECT INBOX"}, {1, "CLOSE"},
		{0, "SELECT INBOX"},
		{1, "SELECT INBOX"},
		{0, "UID SEARCH RETURN (UPDATE ALL) UNSEEN"},
		{1, app},
		{0, "NOOP"},
		{1, "UID STORE 1 +FLAGS.SILENT (\\Seen)"},
		{0, "NOOP"},
		{1, "UID STORE 2 +FLAGS.SILENT (\\Deleted)"},
		{1, "EXPUNGE"},
		{0, "NOOP"},
		{1, "UID STORE 3 +FLAGS.SILENT (\\Seen)"},
		{1, app},
		{0, "NOOP"},
		{0, "CANCELUPDATE \"w6\""},
		{1, app},
		{0, "NOOP"},
	}
	run := func(c [2]*lineConn) [][]string {
		var out [][]string
		for i, s := range script {
			r := c[s.who].do(fmt.Sprintf("w%d", i), s.cmd)
			if s.who == 0 {
				out = append(out, r)
			}
		}
		return out
	}
	ts := startServer(t)
	var ours [2]*lineConn
	for i := range ours {
		rc := dialRaw(t, ts.addr)
		ours[i] = &lineConn{t: t, w: rc.nc, r: rc.r}
		ours[i].do("l", "LOGIN alice pw-alice")
	}
	d0, d1 := dovecotPair(t)
	// The ESEARCH and EXPUNGE responses, in their order, and the status.
	keep := func(all [][]string) [][]string {
		for i, r := range all {
			var k []string
			for _, l := range r {
				if strings.HasPrefix(l, "* ESEARCH") || strings.HasSuffix(l, " EXPUNGE") || !strings.HasPrefix(l, "* ") {
					k = append(k, l)
				}
			}
			all[i] = k
		}
		return all
	}
	a, b := keep(run(ours)), keep(run([2]*lineConn{d0, d1}))
	for i := range a {
		if x, y := strings.Join(a[i], "\n"), strings.Join(b[i], "\n"); x != y {
			t.Errorf("step %d:\nmailmig:\n%s\ndovecot:\n%s", i, x, y)
		}
	}
	if !strings.Contains(strings.Join(a[len(a)-3], "\n"), "ADDTO") {
		t.Errorf("no ADDTO in %q", a[len(a)-3])
	}
}
