package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailmig/mailstore/dovecottest"
	"mailmig/mailstore/mutf7"
	"mailmig/migrate/corpus"
)

// imapLogin connects to a served IMAP listener and logs in.
func imapLogin(t *testing.T, addr, user, pass string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// imapMessage is one message as the IMAP server reports it.
type imapMessage struct {
	UID   uint32
	Flags []string
	Body  string
}

// imapView returns every folder of user as IMAP reports it (bodies with
// LF line ends, flags sorted, no \Recent).
func imapView(t *testing.T, c *imapclient.Client) map[string][]imapMessage {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	view := map[string][]imapMessage{}
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || strings.HasPrefix(l.Mailbox, "shared") {
			continue
		}
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("select %s: %v", l.Mailbox, err)
		}
		var msgs []imapMessage
		if sel.NumMessages > 0 {
			fetched, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range fetched {
				var flags []string
				for _, f := range m.Flags {
					if f != `\Recent` {
						flags = append(flags, string(f))
					}
				}
				slices.Sort(flags)
				body := m.FindBodySection(&imap.FetchItemBodySection{Peek: true})
				msgs = append(msgs, imapMessage{UID: uint32(m.UID), Flags: flags, Body: strings.ReplaceAll(string(body), "\r\n", "\n")})
			}
		}
		view[l.Mailbox] = msgs
	}
	if err := c.Unselect().Wait(); err != nil && c.State() == imap.ConnStateSelected {
		t.Fatal(err)
	}
	return view
}

// checkDoveadmAgrees compares dovecot's reading of the Maildir with what
// IMAP reported: folders, UIDs, flags.
func checkDoveadmAgrees(t *testing.T, maildir string, view map[string][]imapMessage) {
	t.Helper()
	d := dovecottest.New(t, maildir)
	dump, err := d.Dump()
	if err != nil {
		t.Fatalf("doveadm: %v", err)
	}
	for name, msgs := range view {
		f, ok := dump[name]
		if !ok {
			t.Errorf("doveadm does not list folder %q (has %v)", name, imapKeys(dump))
			continue
		}
		if len(f.Messages) != len(msgs) {
			t.Errorf("%s: doveadm sees %d messages, IMAP %d", name, len(f.Messages), len(msgs))
			continue
		}
		for i, m := range msgs {
			dm := f.Messages[i]
			flags := slices.Clone(dm.Flags)
			slices.Sort(flags)
			if dm.UID != m.UID || !slices.Equal(flags, m.Flags) {
				t.Errorf("%s: doveadm has UID %d flags %v, IMAP UID %d flags %v", name, dm.UID, flags, m.UID, m.Flags)
			}
		}
	}
	for name := range dump {
		if _, ok := view[name]; !ok {
			t.Errorf("doveadm lists %q, IMAP does not", name)
		}
	}
}

func imapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestIMAPPython drives the served IMAP with python3's imaplib (login,
// list, select, fetch, store, append, move, expunge, quota, ACL, IDLE),
// then has dovecot's doveadm read the Maildir.
func TestIMAPPython(t *testing.T) {
	py := requireTool(t, "python3")
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	createUser(t, dir, "bob", "bob-pw")
	s := startServe(t, dir)
	addr := s.Addr("imap")
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/imap_session.py", host, port, "alice", "alice-pw", "bob", "bob-pw")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("imap_session.py: %v\n%s\nserver log:\n%s", err, stderr, s.Log())
	}
	var r struct {
		Capabilities  []string
		List          []string
		Append1       []string
		Append2       []string
		Select        []string
		Fetch1Meta    string   `json:"fetch1_meta"`
		Fetch1Body    string   `json:"fetch1_body"`
		FetchEnvelope []string `json:"fetch_envelope"`
		Store         []string
		SearchSeen    []string `json:"search_seen"`
		SearchFrom    []string `json:"search_from"`
		Move          []string
		AfterMove     []string `json:"after_move"`
		Expunge       []string
		GetQuotaRoot  [][]string `json:"getquotaroot"`
		GetACL        []string   `json:"getacl"`
		MyRights      []string   `json:"myrights"`
		OtherList     []string   `json:"other_list"`
		OtherSelect   []string   `json:"other_select"`
		OtherMyRights []string   `json:"other_myrights"`
		IdleExists    string     `json:"idle_exists"`
		IdleLatency   float64    `json:"idle_latency"`
		IdleDone      string     `json:"idle_done"`
		Status        []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if !slices.Contains(r.Capabilities, "IMAP4REV1") || !slices.Contains(r.Capabilities, "IDLE") {
		t.Errorf("capabilities %v", r.Capabilities)
	}
	joined := strings.Join(r.List, "\n")
	for _, want := range []string{`"/" INBOX`, `"/" Work`, `"/" Archive/2009`} {
		if !strings.Contains(joined, want) {
			t.Errorf("LIST lacks %s:\n%s", want, joined)
		}
	}
	if !strings.Contains(strings.Join(r.Append1, " "), "APPENDUID") {
		t.Errorf("APPEND answer %v lacks APPENDUID", r.Append1)
	}
	if len(r.Select) != 1 || r.Select[0] != "2" {
		t.Errorf("SELECT INBOX = %v, want 2 messages", r.Select)
	}
	// 131 = len(msg1) in imap_session.py, which has CRLF line ends.
	if !strings.Contains(r.Fetch1Meta, "UID 1") || !strings.Contains(r.Fetch1Meta, "RFC822.SIZE 131") {
		t.Errorf("FETCH 1 = %q", r.Fetch1Meta)
	}
	if !strings.HasPrefix(r.Fetch1Body, "From: Alice") || !strings.HasSuffix(r.Fetch1Body, "\r\n\r\nfirst body\r\n") {
		t.Errorf("BODY[] = %q", r.Fetch1Body)
	}
	if !strings.Contains(strings.Join(r.FetchEnvelope, " "), `"hello imaplib"`) {
		t.Errorf("ENVELOPE = %v", r.FetchEnvelope)
	}
	if len(r.Store) != 1 || !strings.Contains(r.Store[0], `\Seen`) || !strings.Contains(r.Store[0], "$Work") {
		t.Errorf("STORE = %v", r.Store)
	}
	if !slices.Equal(r.SearchSeen, []string{"1"}) || !slices.Equal(r.SearchFrom, []string{"2"}) {
		t.Errorf("SEARCH SEEN = %v, UID SEARCH FROM carol = %v", r.SearchSeen, r.SearchFrom)
	}
	if !strings.Contains(strings.Join(r.Move, " "), "COPYUID") || !slices.Equal(r.AfterMove, []string{"1"}) {
		t.Errorf("MOVE = %v, then %v messages", r.Move, r.AfterMove)
	}
	if !slices.Equal(r.Expunge, []string{"1"}) {
		t.Errorf("EXPUNGE = %v", r.Expunge)
	}
	q := fmt.Sprint(r.GetQuotaRoot)
	if !strings.Contains(q, `INBOX ""`) || !strings.Contains(q, "STORAGE") || !strings.Contains(q, fmt.Sprint(1<<20)) {
		t.Errorf("GETQUOTAROOT = %v (want the 1 GB default = %d KB)", q, 1<<20)
	}
	if acl := strings.Join(r.GetACL, " "); !strings.Contains(acl, "bob lrs") || !strings.Contains(acl, "alice lrwstipekxa") {
		t.Errorf("GETACL = %v", r.GetACL)
	}
	if !strings.Contains(strings.Join(r.MyRights, " "), "lrwstipekxa") {
		t.Errorf("MYRIGHTS = %v", r.MyRights)
	}
	if !strings.Contains(strings.Join(r.OtherList, " "), "shared/alice/Work") || !slices.Equal(r.OtherSelect, []string{"1"}) {
		t.Errorf("bob: LIST shared = %v, SELECT = %v", r.OtherList, r.OtherSelect)
	}
	if !strings.Contains(strings.Join(r.OtherMyRights, " "), "lrs") {
		t.Errorf("bob MYRIGHTS = %v", r.OtherMyRights)
	}
	if r.IdleExists != "* 1 EXISTS" || r.IdleLatency > 1 || !strings.Contains(r.IdleDone, "OK") {
		t.Errorf("IDLE: %q after %.3fs, DONE -> %q", r.IdleExists, r.IdleLatency, r.IdleDone)
	}
	if len(r.Status) != 1 || !strings.Contains(r.Status[0], "MESSAGES 1") {
		t.Errorf("STATUS = %v", r.Status)
	}

	// dovecot reads what the server wrote and agrees with IMAP.
	view := imapView(t, imapLogin(t, addr, "alice", "alice-pw"))
	if m := view["Work"]; len(m) != 1 || !slices.Contains(m[0].Flags, `\Flagged`) {
		t.Errorf("Work = %+v", m)
	}
	checkDoveadmAgrees(t, filepath.Join(dir, "mail", "alice", "Maildir"), view)

	// mailmig quota reads the same tree.
	qout := mustMailmig(t, dir, "quota", "alice")
	if !strings.Contains(qout, "alice:") || !strings.Contains(qout, "of 1048576 KB") || !strings.Contains(qout, "Work") {
		t.Errorf("mailmig quota alice:\n%s", qout)
	}
}

// TestIMAPStartTLS: on a listener that is not trusted, LOGIN is refused
// before STARTTLS (LOGINDISABLED) and works after it, with the generated
// certificate.
func TestIMAPStartTLS(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServeConfig(t, dir, `[imap]
listeners = [
  { address = "127.0.0.1:0", tls = "starttls", trusted = false },
  { address = "127.0.0.1:0", tls = "implicit", trusted = false },
]
`)
	c, err := imapclient.DialInsecure(s.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	if !c.Caps().Has(imap.CapLoginDisabled) || !c.Caps().Has(imap.CapStartTLS) {
		t.Errorf("capabilities before TLS: %v", c.Caps())
	}
	if err := c.Login("alice", "alice-pw").Wait(); err == nil {
		t.Error("LOGIN without TLS succeeded on an untrusted listener")
	}
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	for _, dial := range []func(string, *imapclient.Options) (*imapclient.Client, error){imapclient.DialStartTLS, imapclient.DialTLS} {
		proto := "imap"
		if fmt.Sprintf("%p", dial) == fmt.Sprintf("%p", imapclient.DialTLS) {
			proto = "imaps"
		}
		c, err := dial(s.Addr(proto), &imapclient.Options{TLSConfig: tc})
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if err := c.Login("alice", "alice-pw").Wait(); err != nil {
			t.Errorf("%s: LOGIN after TLS: %v", proto, err)
		}
		c.Close()
	}
}

// TestIMAPMbsync mirrors a mailbox with Debian's mbsync (isync) and checks
// that every message and flag arrives intact.
func TestIMAPMbsync(t *testing.T) {
	mbsync := requireTool(t, "mbsync")
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServe(t, dir)
	addr := s.Addr("imap")
	c := imapLogin(t, addr, "alice", "alice-pw")
	folders := []string{"INBOX", "Sent", "Lists/go-nuts", "Entwürfe"}
	flagSets := [][]imap.Flag{nil, {imap.FlagSeen}, {imap.FlagSeen, imap.FlagFlagged}, {imap.FlagAnswered, imap.FlagSeen}, {imap.FlagDraft}}
	for fi, f := range folders {
		if f != "INBOX" {
			if err := c.Create(f, nil).Wait(); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 7; i++ {
			body := fmt.Sprintf("From: sender%d@example.org\r\nTo: alice@example.org\r\nSubject: %s message %d\r\nMessage-ID: <%d.%d@example.org>\r\n\r\nline one of %d\r\n>From the mbox days\r\n\r\nend\r\n", i, f, i, fi, i, i)
			cmd := c.Append(f, int64(len(body)), &imap.AppendOptions{Flags: flagSets[i%len(flagSets)], Time: time.Date(2009, 10, 7, 12, i, 0, 0, time.UTC)})
			io.WriteString(cmd, body)
			cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	view := imapView(t, c)

	host, port, _ := strings.Cut(addr, ":")
	local := filepath.Join(t.TempDir(), "local")
	if err := os.MkdirAll(local, 0o700); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(t.TempDir(), "mbsyncrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf(`IMAPAccount srv
Host %s
Port %s
User alice
Pass alice-pw
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account srv

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel mirror
Far :remote:
Near :local:
Patterns *
Sync Pull
Create Near
SyncState *
`, host, port, local, local)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mbsync, "-c", rc, "-a").CombinedOutput()
	if err != nil {
		t.Fatalf("mbsync: %v\n%s\nserver log:\n%s", err, out, s.Log())
	}
	if os.Getenv("IMAPTEST_KEEP") != "" {
		exec.Command("cp", "-r", local, "/tmp/mbsync-local").Run()
	}
	for _, f := range folders {
		// mbsync names local folders in modified UTF-7.
		path := filepath.Join(local, strings.ReplaceAll(f, "Entwürfe", "Entw&APw-rfe"))
		got := mbsyncReadLocal(t, path)
		want := view[f]
		if len(got) != len(want) {
			t.Errorf("%s: mbsync mirrored %d messages, server has %d", f, len(got), len(want))
			continue
		}
		for _, w := range want {
			g, ok := got[w.Body]
			if !ok {
				t.Errorf("%s: UID %d's body did not arrive intact", f, w.UID)
				continue
			}
			if !slices.Equal(g, mbsyncFlags(w.Flags)) {
				t.Errorf("%s: UID %d flags %v locally, %v on the server", f, w.UID, g, w.Flags)
			}
		}
	}
}

// mbsyncReadLocal returns body (LF line ends) -> Maildir flag letters.
func mbsyncReadLocal(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("mirror folder %s: %v", dir, err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			var letters []string
			if _, info, ok := strings.Cut(e.Name(), ":2,"); ok {
				for _, r := range info {
					letters = append(letters, string(r))
				}
			}
			slices.Sort(letters)
			// mbsync adds its own X-TUID header; the rest must be intact.
			body := imapTUIDRe.ReplaceAllString(strings.ReplaceAll(string(b), "\r\n", "\n"), "")
			out[body] = letters
		}
	}
	return out
}

var imapTUIDRe = regexp.MustCompile(`(?m)^X-TUID: [^\n]*\n`)

// mbsyncFlags maps IMAP system flags (and $Forwarded, which mbsync keeps
// as P) to Maildir letters.
func mbsyncFlags(flags []string) []string {
	m := map[string]string{`\Draft`: "D", `\Flagged`: "F", "$Forwarded": "P", `\Answered`: "R", `\Seen`: "S", `\Deleted`: "T"}
	var out []string
	for _, f := range flags {
		if l, ok := m[f]; ok {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// TestIMAPMbsyncConvertedCorpus: a generated UW-IMAP tree (with its
// quirks) is converted with `mailmig convert`, served, and mirrored with
// mbsync; every message of every folder arrives with its bytes and flags.
func TestIMAPMbsyncConvertedCorpus(t *testing.T) {
	mbsync := requireTool(t, "mbsync")
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	tree, err := corpus.Generate(filepath.Join(t.TempDir(), "src"), "alice", corpus.Options{Seed: 7, Folders: 3, InboxMessages: 25, FolderMessages: 12, Quirks: true, MaxAttachment: 20 << 10})
	if err != nil {
		t.Fatal(err)
	}
	maildir := filepath.Join(dir, "mail", "alice", "Maildir")
	out, errOut, code := runMailmig(t, dir, "convert", "--inbox", tree.Inbox, "--folders", tree.FoldersDir,
		"--subscriptions", tree.Subscriptions, "--out", maildir, "--no-inbox-lock", "--quiet")
	if code != 0 && code != 2 { // 2: the corpus has files that are not mbox
		t.Fatalf("convert: exit %d\n%s\n%s", code, out, errOut)
	}
	s := startServe(t, dir)
	addr := s.Addr("imap")
	host, port, _ := strings.Cut(addr, ":")
	local := filepath.Join(t.TempDir(), "local")
	if err := os.MkdirAll(local, 0o700); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(t.TempDir(), "mbsyncrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf("IMAPAccount srv\nHost %s\nPort %s\nUser alice\nPass alice-pw\nSSLType None\nAuthMechs LOGIN\n\n"+
		"IMAPStore remote\nAccount srv\n\nMaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"+
		"Channel mirror\nFar :remote:\nNear :local:\nPatterns *\nSync Pull\nCreate Near\nSyncState *\n", host, port, local, local)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, mbsync, "-c", rc, "-a").CombinedOutput(); err != nil {
		t.Fatalf("mbsync: %v\n%s\nserver log:\n%s", err, out, s.Log())
	}
	// What the server holds, as IMAP reports it, against the mirror.
	view := imapView(t, imapLogin(t, addr, "alice", "alice-pw"))
	total := 0
	for name, f := range tree.Folders {
		msgs, ok := view[name]
		if !ok {
			t.Errorf("folder %q of the corpus is not served (have %v)", name, imapKeys(view))
			continue
		}
		if len(msgs) != len(f.Messages) {
			t.Errorf("%s: served %d messages, the corpus has %d", name, len(msgs), len(f.Messages))
		}
		got := mbsyncReadLocal(t, filepath.Join(local, mbsyncPath(name)))
		for _, m := range msgs {
			letters, ok := got[m.Body]
			if !ok {
				t.Errorf("%s: UID %d did not arrive intact", name, m.UID)
				continue
			}
			if want := mbsyncFlags(m.Flags); !slices.Equal(letters, want) {
				t.Errorf("%s: UID %d flags %v locally, %v served", name, m.UID, letters, m.Flags)
			}
			total++
		}
	}
	if total == 0 {
		t.Fatal("nothing compared")
	}
}

// mbsyncPath is the local path mbsync uses for an IMAP folder name
// (modified UTF-7, '/' as directory separator).
func mbsyncPath(name string) string { return mutf7.Encode(name) }

// TestQuotaCommand: mailmig quota for a user without mail yet, with a
// per-account limit, and for an unknown user.
func TestQuotaCommand(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "bob", "bob-pw")
	out := mustMailmig(t, dir, "quota", "bob")
	if !strings.HasPrefix(out, "bob: 0 KB used of 1048576 KB (0.0%), 0 messages") {
		t.Errorf("quota of a user without mail:\n%s", out)
	}
	if _, _, code := runMailmig(t, dir, "quota", "nobody"); code == 0 {
		t.Error("quota of an unknown user succeeded")
	}
	if _, _, code := runMailmig(t, dir, "quota"); code == 0 {
		t.Error("quota without a user succeeded")
	}
}

// TestIMAPQuotaOverride: a per-account quota from `mailmig user add
// --quota` reaches GETQUOTAROOT, APPEND (NO [OVERQUOTA]) and mailmig quota.
func TestIMAPQuotaOverride(t *testing.T) {
	dir := t.TempDir()
	if out, errOut, code := runMailmigStdin(t, dir, "bob-pw\n", "user", "add", "--quota", "8KB", "--quota-messages", "2", "bob"); code != 0 {
		t.Fatalf("user add: %d %s %s", code, out, errOut)
	}
	s := startServe(t, dir)
	c := imapLogin(t, s.Addr("imap"), "bob", "bob-pw")
	roots, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0].Resources[imap.QuotaResourceStorage].Limit != 8 || roots[0].Resources[imap.QuotaResourceMessage].Limit != 2 {
		t.Fatalf("GETQUOTAROOT = %+v", roots)
	}
	var codes []imap.ResponseCode
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("Subject: q%d\r\n\r\nsmall\r\n", i)
		cmd := c.Append("INBOX", int64(len(msg)), nil)
		io.WriteString(cmd, msg)
		cmd.Close()
		_, err := cmd.Wait()
		var ie *imap.Error
		if errors.As(err, &ie) {
			codes = append(codes, ie.Code)
		} else if err != nil {
			t.Fatal(err)
		} else {
			codes = append(codes, "")
		}
	}
	if !slices.Equal(codes, []imap.ResponseCode{"", "", imap.ResponseCodeOverQuota}) {
		t.Errorf("APPEND results %v, want the third over quota", codes)
	}
	if out := mustMailmig(t, dir, "quota", "bob"); !strings.Contains(out, "of 8 KB") || !strings.Contains(out, "2 messages of 2 (100.0%)") {
		t.Errorf("mailmig quota bob:\n%s", out)
	}
}

// TestIMAPSigtermFinishesAppend: SIGTERM during an APPEND lets it finish
// (tagged OK with APPENDUID), then the session gets BYE and serve exits.
func TestIMAPSigtermFinishesAppend(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "carol", "carol-pw")
	s := startServe(t, dir)
	nc, err := net.Dial("tcp", s.Addr("imap"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(nc)
	readUntil := func(prefix string) []string {
		var lines []string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v after %q", err, lines)
			}
			lines = append(lines, strings.TrimRight(l, "\r\n"))
			if strings.HasPrefix(l, prefix) {
				return lines
			}
		}
	}
	readUntil("* OK")
	msg := "Subject: during shutdown\r\n\r\n" + strings.Repeat("y", 5000) + "\r\n"
	fmt.Fprintf(nc, "a LOGIN carol carol-pw\r\nb APPEND INBOX {%d}\r\n", len(msg))
	readUntil("a ")
	readUntil("+")
	io.WriteString(nc, msg[:1000])
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	io.WriteString(nc, msg[1000:]+"\r\n")
	lines := readUntil("* BYE")
	if !strings.HasPrefix(lines[0], "b OK [APPENDUID") {
		t.Errorf("APPEND during SIGTERM: %q", lines)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Errorf("serve exited with %v\n%s", err, s.Log())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	view := filepath.Join(dir, "mail", "carol", "Maildir")
	d := dovecottest.New(t, view)
	msgs, err := d.Messages("INBOX")
	if err != nil || len(msgs) != 1 || msgs[0].VSize != int64(len(msg)) {
		t.Errorf("after shutdown dovecot sees %+v, %v", msgs, err)
	}
}
