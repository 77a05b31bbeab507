package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailmig/mailstore"
)

// fakeAuth accepts the passwords in its map.
type fakeAuth map[string]string

func (a fakeAuth) Authenticate(_ context.Context, _, user, pass string) error {
	if p, ok := a[user]; ok && p == pass {
		return nil
	}
	return errors.New("bad credentials")
}

// testServer is a server on 127.0.0.1:0 with users alice, bob, carol
// (password "pw-" + name), each with a Maildir under dir.
type testServer struct {
	srv   *Server
	addr  string
	dir   string
	hub   *mailstore.Hub
	quota map[string]int64
	mu    sync.Mutex
}

type serverOpt func(*Options, *ListenerOptions)

func startServer(t testing.TB, opts ...serverOpt) *testServer {
	t.Helper()
	ts := &testServer{dir: t.TempDir(), hub: mailstore.NewHub(), quota: map[string]int64{}}
	users := []string{"alice", "bob", "carol"}
	auth := fakeAuth{}
	for _, u := range users {
		auth[u] = "pw-" + u
	}
	o := Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Auth:   auth,
		MaildirFor: func(user string) (string, error) {
			return filepath.Join(ts.dir, user, "Maildir"), nil
		},
		QuotaFor: func(user string) (int64, int64) {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			if q, ok := ts.quota[user]; ok {
				return q, 0
			}
			return DefaultQuotaBytes, 0
		},
		Users:        func() ([]string, error) { return users, nil },
		Hub:          ts.hub,
		NoFsync:      true,
		PollInterval: 100 * time.Millisecond,
	}
	lo := ListenerOptions{Trusted: true}
	for _, f := range opts {
		f(&o, &lo)
	}
	ts.srv = New(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(ln, lo) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ts
}

// store opens user's Maildir directly, as a delivery in another process
// would (own Hub).
func (ts *testServer) store(t testing.TB, user string) *mailstore.Store {
	t.Helper()
	st, err := mailstore.Open(filepath.Join(ts.dir, user, "Maildir"), mailstore.Options{CreateRoot: true, NoFsync: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (ts *testServer) login(t *testing.T, user string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(ts.addr, &imapclient.Options{UnilateralDataHandler: h, DebugWriter: debugWriter(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, "pw-"+user).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func testMessage(subject, body string) string {
	return "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: " + subject +
		"\r\nDate: Wed, 07 Oct 2009 12:00:00 +0200\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\r\n\r\n" + body
}

func appendMsg(t *testing.T, c *imapclient.Client, mailbox, msg string, flags ...imap.Flag) imap.UID {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags, Time: time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)})
	if _, err := io.WriteString(cmd, msg); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
	return data.UID
}

// rawConn is a line-level client for transcript tests.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
	if l := rc.line(); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting %q", l)
	}
	return rc
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.nc, s); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) line() string {
	rc.t.Helper()
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// until reads lines up to the one starting with prefix and returns all.
func (rc *rawConn) until(prefix string) []string {
	rc.t.Helper()
	var out []string
	for i := 0; i < 10000; i++ {
		l := rc.line()
		out = append(out, l)
		if strings.HasPrefix(l, prefix) {
			return out
		}
	}
	rc.t.Fatalf("no line starting %q in %q", prefix, out)
	return nil
}

func TestBasicSession(t *testing.T) {
	ts := startServer(t)
	c := ts.login(t, "alice", nil)

	if !c.Caps().Has("QUOTA") || !c.Caps().Has("ACL") || !c.Caps().Has("ID") || !c.Caps().Has(imap.CapMove) {
		t.Errorf("capabilities after login lack QUOTA/ACL/ID/MOVE: %v", c.Caps())
	}
	for _, name := range []string{"Sent", "Drafts", "Trash", "junk", "Work/Projects", "Entwürfe"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	if err := c.Create("INBOX", nil).Wait(); err == nil {
		t.Error("CREATE INBOX succeeded")
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		attrs[l.Mailbox] = l.Attrs
	}
	for name, want := range map[string]imap.MailboxAttr{"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts, "Trash": imap.MailboxAttrTrash, "junk": imap.MailboxAttrJunk} {
		if !slices.Contains(attrs[name], want) {
			t.Errorf("LIST %s attrs %v, want %s", name, attrs[name], want)
		}
	}
	if _, ok := attrs["Entwürfe"]; !ok {
		t.Errorf("LIST lacks the UTF-8 folder: %v", attrs)
	}
	if _, ok := attrs["INBOX"]; !ok {
		t.Errorf("LIST lacks INBOX: %v", attrs)
	}

	u1 := appendMsg(t, c, "INBOX", testMessage("first one", "hello\r\nworld\r\n"))
	u2 := appendMsg(t, c, "INBOX", testMessage("second", "body two\r\n"), imap.FlagSeen, "$Label1")
	if u1 == 0 || u2 <= u1 {
		t.Fatalf("APPENDUID %d, %d", u1, u2)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 2 || sel.UIDValidity == 0 || sel.UIDNext != u2+1 {
		t.Errorf("SELECT: %+v", sel)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, RFC822Size: true, InternalDate: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{{Peek: true}, {Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("fetched %d messages", len(msgs))
	}
	m := msgs[0]
	if m.UID != u1 || m.Envelope == nil || m.Envelope.Subject != "first one" || m.Envelope.From[0].Host != "example.org" || m.Envelope.MessageID != "first.one@example.org" {
		t.Errorf("message 1: uid %d envelope %+v", m.UID, m.Envelope)
	}
	full := testMessage("first one", "hello\r\nworld\r\n")
	if got := string(m.FindBodySection(&imap.FetchItemBodySection{Peek: true})); got != full {
		t.Errorf("BODY[] = %q, want %q", got, full)
	}
	if m.RFC822Size != int64(len(full)) {
		t.Errorf("RFC822.SIZE = %d, want %d", m.RFC822Size, len(full))
	}
	if got := string(m.FindBodySection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}})); got != "Subject: first one\r\n\r\n" {
		t.Errorf("HEADER.FIELDS (Subject) = %q", got)
	}
	if !m.InternalDate.Equal(time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("INTERNALDATE = %v", m.InternalDate)
	}
	if bs, ok := m.BodyStructure.(*imap.BodyStructureSinglePart); !ok || bs.Type != "text" && bs.Type != "TEXT" {
		t.Errorf("BODYSTRUCTURE = %#v", m.BodyStructure)
	}
	if slices.Contains(m.Flags, imap.FlagSeen) {
		t.Errorf("message 1 flags %v: PEEK must not set \\Seen", m.Flags)
	}
	if !slices.Contains(msgs[1].Flags, imap.FlagSeen) || !slices.Contains(msgs[1].Flags, "$Label1") {
		t.Errorf("message 2 flags %v", msgs[1].Flags)
	}

	// BODY[TEXT] without PEEK sets \Seen.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(msgs[0].FindBodySection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierText})); got != "hello\r\nworld\r\n" {
		t.Errorf("BODY[TEXT] = %q", got)
	}
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("BODY[TEXT] did not report \\Seen: %v", msgs[0].Flags)
	}

	// STORE, SEARCH.
	if _, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	sr, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := sr.AllUIDs(); len(got) != 1 || got[0] != u2 {
		t.Errorf("UID SEARCH FLAGGED = %v, want [%d]", got, u2)
	}
	sr, err = c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "FIRST"}}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := sr.AllSeqNums(); len(got) != 1 || got[0] != 1 {
		t.Errorf("SEARCH SUBJECT first = %v", got)
	}
	sr, err = c.Search(&imap.SearchCriteria{Body: []string{"body two"}}, nil).Wait()
	if err != nil || len(sr.AllSeqNums()) != 1 || sr.AllSeqNums()[0] != 2 {
		t.Errorf("SEARCH BODY = %v, %v", sr, err)
	}

	// COPY and MOVE with UIDPLUS.
	cd, err := c.Copy(imap.SeqSetNum(1), "Work/Projects").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if cd.UIDValidity == 0 || cd.DestUIDs.String() != "1" {
		t.Errorf("COPYUID %+v", cd)
	}
	md, err := c.Move(imap.SeqSetNum(2), "Trash").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if md.DestUIDs.String() != "1" || md.SourceUIDs.String() != fmt.Sprint(u2) {
		t.Errorf("MOVE COPYUID %+v", md)
	}
	if n := c.Mailbox().NumMessages; n != 1 {
		t.Errorf("after MOVE the client counts %d messages, want 1", n)
	}

	// EXPUNGE.
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	exp, err := c.Expunge().Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 1 || exp[0] != 1 {
		t.Errorf("EXPUNGE = %v", exp)
	}

	// STATUS with SIZE.
	st, err := c.Status("Trash", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, Size: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 1 || st.UIDNext != 2 || *st.NumUnseen != 0 || st.Size == nil || *st.Size == 0 {
		t.Errorf("STATUS Trash %+v", st)
	}

	// QUOTA.
	qr, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(qr) != 1 || qr[0].Resources[imap.QuotaResourceStorage].Limit != DefaultQuotaBytes/1024 || qr[0].Resources[imap.QuotaResourceStorage].Usage == 0 {
		t.Errorf("GETQUOTAROOT = %+v", qr)
	}

	// NAMESPACE, ID.
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || len(ns.Other) != 1 || ns.Other[0].Prefix != "shared/" || len(ns.Shared) != 0 {
		t.Errorf("NAMESPACE %+v", ns)
	}
	id, err := c.ID(&imap.IDData{Name: "test"}).Wait()
	if err != nil || id.Name != "mailmig" {
		t.Errorf("ID = %+v, %v", id, err)
	}
	if err := c.Rename("Work/Projects", "Work/Done", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("Work/Done").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestLoginRules(t *testing.T) {
	ts := startServer(t, func(o *Options, lo *ListenerOptions) { lo.Trusted = false })
	rc := dialRaw(t, ts.addr)
	rc.send("a CAPABILITY\r\n")
	lines := rc.until("a ")
	if !strings.Contains(lines[0], "LOGINDISABLED") || strings.Contains(lines[0], "AUTH=PLAIN") {
		t.Errorf("capability before TLS on an untrusted listener: %q", lines[0])
	}
	rc.send("b LOGIN alice pw-alice\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "b NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN without TLS: %q", l)
	}
	rc.send("c AUTHENTICATE PLAIN AGFsaWNlAHB3LWFsaWNl\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "c NO [PRIVACYREQUIRED]") {
		t.Errorf("AUTHENTICATE without TLS: %q", l)
	}
	rc.send("d SELECT INBOX\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "d BAD") {
		t.Errorf("SELECT before login: %q", l)
	}

	ts2 := startServer(t)
	rc = dialRaw(t, ts2.addr)
	rc.send("a LOGIN alice wrong\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "a NO [AUTHENTICATIONFAILED]") {
		t.Errorf("bad password: %q", l)
	}
	// SASL PLAIN with an initial response, then a continuation.
	rc.send("b AUTHENTICATE PLAIN AGFsaWNlAHB3LWFsaWNl\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "b OK") {
		t.Errorf("AUTHENTICATE PLAIN: %q", l)
	}
	rc = dialRaw(t, ts2.addr)
	rc.send("c AUTHENTICATE PLAIN\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("AUTHENTICATE continuation: %q", l)
	}
	rc.send("AGJvYgBwdy1ib2I=\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "c OK") {
		t.Errorf("AUTHENTICATE PLAIN (continuation): %q", l)
	}
}

// TestTranscript checks protocol details with raw lines: pipelining,
// LITERAL+, unknown commands, errors that keep the session going.
func TestTranscript(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	// Pipelined commands in one write, one with a non-synchronizing literal.
	msg := "Subject: lit\r\n\r\nx\r\n"
	rc.send(fmt.Sprintf("a LOGIN {5+}\r\nalice pw-alice\r\nb APPEND INBOX (\\Flagged) {%d+}\r\n%s\r\nc SELECT INBOX\r\n", len(msg), msg))
	lines := rc.until("c ")
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"a OK", "b OK [APPENDUID ", "* 1 EXISTS", "c OK [READ-WRITE]"} {
		if !strings.Contains(joined, want) {
			t.Errorf("pipelined transcript lacks %q:\n%s", want, joined)
		}
	}
	rc.send("d FROBNICATE\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "d BAD") {
		t.Errorf("unknown command: %q", l)
	}
	// A synchronizing literal gets a continuation.
	rc.send("e FETCH 1 (BODY.PEEK[HEADER.FIELDS ({7}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("no continuation: %q", l)
	}
	rc.send("Subject)])\r\n")
	lines = rc.until("e ")
	if !strings.Contains(strings.Join(lines, "\n"), "Subject: lit") || !strings.HasPrefix(lines[len(lines)-1], "e OK") {
		t.Errorf("FETCH with literal header list: %q", lines)
	}
	// A bad command with a non-synchronizing literal is skipped whole.
	rc.send("f FETCH x {3+}\r\nabc\r\ng NOOP\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "f BAD") {
		t.Errorf("bad FETCH: %q", l)
	}
	if l := rc.until("g "); !strings.HasPrefix(l[len(l)-1], "g OK") {
		t.Errorf("after a bad command: %q", l)
	}
	rc.send("h FETCH 5 FLAGS\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "h BAD") {
		t.Errorf("FETCH beyond the last message: %q", l)
	}
	rc.send("i UID FETCH 1:* (FLAGS)\r\n")
	lines = rc.until("i ")
	if len(lines) != 2 || !strings.Contains(lines[0], `FLAGS (\Flagged`) || !strings.Contains(lines[0], "UID 1") {
		t.Errorf("UID FETCH: %q", lines)
	}
	rc.send("j STORE 1 +FLAGS.SILENT (\\Seen)\r\nk LOGOUT\r\n")
	lines = rc.until("k ")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "j OK") || !strings.HasPrefix(lines[1], "* BYE") {
		t.Errorf("STORE .SILENT + LOGOUT: %q", lines)
	}
}

// TestAppendOverQuota checks RFC 9208 §4.4 OVERQUOTA on APPEND.
func TestAppendOverQuota(t *testing.T) {
	ts := startServer(t)
	ts.quota["bob"] = 2048
	c := ts.login(t, "bob", nil)
	appendMsg(t, c, "INBOX", testMessage("small", "x\r\n"))
	// Under 4096 bytes imapclient sends a non-synchronizing literal, which
	// the server must read and drop before answering.
	big := testMessage("big", strings.Repeat("y", 3000)+"\r\n")
	cmd := c.Append("INBOX", int64(len(big)), nil)
	io.WriteString(cmd, big)
	cmd.Close()
	_, err := cmd.Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeOverQuota {
		t.Fatalf("APPEND over quota: %v, want NO [OVERQUOTA]", err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Errorf("after refused APPEND: %+v, %v", st, err)
	}
	// The session goes on.
	appendMsg(t, c, "INBOX", testMessage("small2", "x\r\n"))

	// A synchronizing literal is refused before the client sends it.
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN bob pw-bob\r\nb APPEND INBOX {5000}\r\n")
	rc.until("a ")
	if l := rc.line(); !strings.HasPrefix(l, "b NO [OVERQUOTA]") {
		t.Errorf("sync APPEND over quota: %q", l)
	}
	rc.send("c NOOP\r\n")
	if l := rc.until("c "); !strings.HasPrefix(l[len(l)-1], "c OK") {
		t.Errorf("after refused APPEND: %q", l)
	}
}

// debugWriter logs the wire when IMAPTEST_TRACE is set.
func debugWriter(t *testing.T) io.Writer {
	if os.Getenv("IMAPTEST_TRACE") == "" {
		return nil
	}
	return tWriter{t}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Logf("%q", p)
	return len(p), nil
}

// TestShortCommands: commands cut short after their name get BAD, and
// the session continues.
func TestShortCommands(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN alice pw-alice\r\n")
	rc.until("a ")
	for _, cmd := range []string{"SELECT", "EXAMINE", "LSUB", "LIST", "UNSUBSCRIBE", "DELETEACL", "SETACL", "CREATE", "STATUS", "APPEND", "GETQUOTAROOT", "ID", "UID", "UID MOVE"} {
		rc.send("x " + cmd + "\r\n")
		if l := rc.line(); !strings.HasPrefix(l, "x BAD") {
			t.Errorf("%s without arguments: %q", cmd, l)
		}
	}
	rc.send("y SELECT INBOX\r\n")
	rc.until("y ")
	for _, cmd := range []string{"CLOSE x", "FETCH", "STORE 1", "COPY", "MOVE 1", "SEARCH", "UID EXPUNGE"} {
		rc.send("x " + cmd + "\r\n")
		if l := rc.line(); !strings.HasPrefix(l, "x BAD") {
			t.Errorf("%s: %q", cmd, l)
		}
	}
	rc.send("z NOOP\r\n")
	if l := rc.until("z "); !strings.HasPrefix(l[len(l)-1], "z OK") {
		t.Errorf("session after short commands: %q", l)
	}
}

// TestMultipartFetch: BODYSTRUCTURE, part sections, MIME headers and
// BINARY of a multipart message.
func TestMultipartFetch(t *testing.T) {
	ts := startServer(t)
	c := ts.login(t, "alice", nil)
	msg := "From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello part one\r\n" +
		"--XX\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gYmluYXJ5\r\n" +
		"--XX--\r\n"
	appendMsg(t, c, "INBOX", msg)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	part1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	mime2 := &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME, Peek: true}
	bin2 := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{part1, mime2},
		BinarySection: []*imap.FetchItemBinarySection{bin2},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 || !strings.EqualFold(mp.Subtype, "mixed") {
		t.Fatalf("BODYSTRUCTURE = %#v", m.BodyStructure)
	}
	att := mp.Children[1].(*imap.BodyStructureSinglePart)
	if att.Filename() != "a.bin" || !strings.EqualFold(att.Encoding, "base64") {
		t.Errorf("attachment part %+v (filename %q)", att, att.Filename())
	}
	if got := string(m.FindBodySection(part1)); got != "hello part one" {
		t.Errorf("BODY[1] = %q", got)
	}
	if got := string(m.FindBodySection(mime2)); !strings.Contains(got, "Content-Disposition: attachment") {
		t.Errorf("BODY[2.MIME] = %q", got)
	}
	if got := string(m.FindBinarySection(bin2)); got != "hello binary" {
		t.Errorf("BINARY[2] = %q", got)
	}
}

// TestListVariants: LSUB, LIST-EXTENDED selection/return options,
// LIST-STATUS and the delimiter query, as Thunderbird and Apple Mail use
// them.
func TestListVariants(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN alice pw-alice\r\nb CREATE Sent\r\nc CREATE Lists/go\r\nd SUBSCRIBE Sent\r\ne SUBSCRIBE Gone\r\n")
	rc.until("e ")
	msg := "Subject: x\r\n\r\nx\r\n"
	rc.send(fmt.Sprintf("f APPEND Sent {%d+}\r\n%s\r\n", len(msg), msg))
	rc.until("f ")
	check := func(cmd string, want ...string) {
		t.Helper()
		rc.send("g " + cmd + "\r\n")
		lines := rc.until("g ")
		joined := strings.Join(lines, "\n")
		if !strings.HasPrefix(lines[len(lines)-1], "g OK") {
			t.Errorf("%s: %s", cmd, joined)
			return
		}
		for _, w := range want {
			if !strings.Contains(joined, w) {
				t.Errorf("%s: lacks %q:\n%s", cmd, w, joined)
			}
		}
	}
	check(`LIST "" ""`, `* LIST (\Noselect) "/" ""`)
	// As dovecot: LSUB carries no child information, and a subscribed name
	// that does not exist is "LSUB ()" (testdata/sessions has the live
	// comparison).
	check(`LSUB "" "*"`, `* LSUB (\Sent) "/" Sent`, `* LSUB () "/" Gone`)
	check(`LIST (SUBSCRIBED) "" "*"`, `* LIST (\Sent \Subscribed) "/" Sent`, `(\NonExistent \Subscribed) "/" Gone`)
	check(`LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT UNSEEN))`, `* STATUS Sent (MESSAGES 1 UIDNEXT 2 UNSEEN 1)`, `"/" Lists/go`)
	check(`LIST (SPECIAL-USE) "" "*"`, `\Sent`)
	check(`LIST "" "Lists/%"`, `"/" Lists/go`)
	check(`LIST "" (INBOX Sent)`, `"/" INBOX`, `"/" Sent`)
	check(`STATUS Sent (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE DELETED)`, `MESSAGES 1 UIDNEXT 2`, `SIZE 17`)
}

// TestBigAppendAndIdleUnselected: a message larger than any in-memory
// literal limit is streamed to the store and read back intact; IDLE works
// without a selected mailbox.
func TestBigAppendAndIdleUnselected(t *testing.T) {
	ts := startServer(t)
	c := ts.login(t, "carol", nil)
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 50000)
	msg := testMessage("big", body)
	appendMsg(t, c, "INBOX", msg)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if got := msgs[0].FindBodySection(&imap.FetchItemBodySection{Peek: true}); string(got) != msg || msgs[0].RFC822Size != int64(len(msg)) {
		t.Errorf("big message: got %d bytes (RFC822.SIZE %d), want %d", len(got), msgs[0].RFC822Size, len(msg))
	}
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN carol pw-carol\r\nb IDLE\r\n")
	rc.until("a ")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	rc.send("DONE\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "b OK") {
		t.Errorf("IDLE DONE: %q", l)
	}
}
