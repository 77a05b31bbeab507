package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"mailmig/mailstore/dovecottest"
	"mailmig/server/outbound"
	"mailmig/server/sessions"
)

// scrape fetches /metrics from a running serve and parses it with
// Prometheus' own text-format parser.
func scrape(t *testing.T, s *served) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr("metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue returns the value of the sample of name whose labels
// include all of labels ("k=v"), and whether there is one.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsAndQueue scrapes the real `mailmig serve` after real
// traffic: IMAP logins that succeed and fail, LMTP deliveries (one whose
// Sieve script fails at run time), mail for another domain held in the
// outgoing queue, a user in the migration queue and the certificate.
// Then `mailmig queue list|flush|delete` work that queue, through the
// binary.
func TestMetricsAndQueue(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	createUser(t, dir, "carol", "carol-pw")
	addOldUsers(t, dir, "dave")
	os.WriteFile(filepath.Join(dir, "old", "spool", "dave"), nil, 0o600)
	mustMailmig(t, dir, "enqueue", "dave")
	// carol's script fails at run time: the redirect address is only
	// known when it runs, and is no address.
	sieveDir := filepath.Join(dir, "mail", "carol", "sieve")
	os.MkdirAll(sieveDir, 0o700)
	os.WriteFile(filepath.Join(sieveDir, "bad.sieve"), []byte("require \"variables\";\nset \"a\" \"not an address\";\nredirect \"${a}\";\n"), 0o600)
	os.Symlink("sieve/bad.sieve", filepath.Join(dir, "mail", "carol", ".dovecot.sieve"))

	s := startServe(t, dir)
	if host, _, _ := net.SplitHostPort(s.Addr("metrics")); host != "127.0.0.1" {
		t.Fatalf("metrics listener on %s, want loopback", s.Addr("metrics"))
	}
	before := time.Now()
	imapLogin(t, s.Addr("imap"), "alice", "alice-pw").Logout().Wait()
	c, err := imapclient.DialInsecure(s.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("alice", "wrong").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	c.Close()
	lmtpDeliver(t, s, "x@example.net", "alice@example.org", "Subject: one\n\nbody\n")
	// The old MTA's pipe: a process of its own, counted in the state
	// database. dave is queued: his mail still goes to the old spool.
	if out, errOut, code := runMailmigStdin(t, dir, "Subject: old\n\nbody\n", "deliver", "-f", "x@example.net", "dave"); code != 0 {
		t.Fatalf("deliver dave: exit %d %s %s", code, out, errOut)
	}
	// carol has an account and no old world: the new store, where her
	// script fails at run time in deliver's process.
	if out, errOut, code := runMailmigStdin(t, dir, "Subject: three\n\nbody\n", "deliver", "-f", "x@example.net", "carol"); code != 0 {
		t.Fatalf("deliver carol: exit %d %s %s", code, out, errOut)
	}
	if _, _, code := runMailmigStdin(t, dir, "Subject: old\n\nbody\n", "deliver", "-f", "x@example.net", "nosuchuser"); code != 67 {
		t.Fatalf("deliver nosuchuser: exit %d, want 67", code)
	}
	lmtpDeliver(t, s, "x@example.net", "carol@example.org", "Subject: two\n\nbody\n")
	// Mail for another domain, relayed from loopback (trusted in --data
	// mode) with no smarthost: it stays in the outgoing queue.
	sc, err := smtp.Dial(s.Addr("submission"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SendMail("alice@example.org", []string{"bob@remote.example"}, strings.NewReader("Subject: out\r\n\r\nhello\r\n")); err != nil {
		t.Fatalf("submission: %v", err)
	}
	sc.Quit()

	fams := scrape(t, s)
	want := []struct {
		name   string
		labels []string
		check  func(float64) bool
		what   string
	}{
		{"mailmig_logins_total", []string{"protocol=imap", "result=ok"}, func(v float64) bool { return v == 1 }, "1"},
		{"mailmig_logins_total", []string{"protocol=imap", "result=failed"}, func(v float64) bool { return v == 1 }, "1"},
		{"mailmig_connections_total", []string{"protocol=imap"}, func(v float64) bool { return v == 2 }, "2"},
		{"mailmig_connections_total", []string{"protocol=lmtp"}, func(v float64) bool { return v == 2 }, "2"},
		{"mailmig_connections_total", []string{"protocol=submission"}, func(v float64) bool { return v == 1 }, "1"},
		{"mailmig_deliveries_total", []string{"via=lmtp", "outcome=delivered"}, func(v float64) bool { return v == 2 }, "2"},
		{"mailmig_deliveries_total", []string{"via=deliver", "outcome=delivered"}, func(v float64) bool { return v == 2 }, "2"},
		{"mailmig_deliveries_total", []string{"via=deliver", "outcome=rejected"}, func(v float64) bool { return v == 1 }, "1"},
		{"mailmig_sieve_runtime_errors_total", nil, func(v float64) bool { return v == 2 }, "2 (LMTP in serve, deliver in its own process)"},
		{"mailmig_outbound_queue_messages", nil, func(v float64) bool { return v == 1 }, "1"},
		{"mailmig_outbound_queue_oldest_age_seconds", nil, func(v float64) bool { return v >= 0 && v < time.Since(before).Seconds()+1 }, "the queued mail's age"},
		{"mailmig_migration_users", []string{"state=queued"}, func(v float64) bool { return v == 1 }, "1"},
		{"mailmig_migration_users", []string{"state=done"}, func(v float64) bool { return v == 0 }, "0"},
		{"mailmig_migration_copied_bytes", nil, func(v float64) bool { return v == 0 }, "0"},
		{"mailmig_migration_step_failures", nil, func(v float64) bool { return v == 0 }, "0"},
		{"mailmig_tls_certificate_expiry_timestamp_seconds", nil, func(v float64) bool { return v > float64(time.Now().Add(24*time.Hour).Unix()) }, "a future time"},
	}
	for _, w := range want {
		v, ok := metricValue(fams, w.name, w.labels...)
		if !ok || !w.check(v) {
			t.Errorf("%s%v = %v (present %v), want %s", w.name, w.labels, v, ok, w.what)
		}
	}

	// The queue, as the postmaster sees it.
	var list []outbound.Entry
	if err := json.Unmarshal([]byte(mustMailmig(t, dir, "queue", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].From != "alice@example.org" || !slices.Equal(list[0].To, []string{"bob@remote.example"}) || list[0].Size == 0 {
		t.Fatalf("queue list: %+v", list)
	}
	id := list[0].ID
	if out := mustMailmig(t, dir, "queue", "list"); !strings.Contains(out, id) || !strings.Contains(out, "bob@remote.example") || !strings.Contains(out, "in 1 messages") {
		t.Errorf("queue list:\n%s", out)
	}
	// Flush: the runner attempts it at once (and fails: no smarthost).
	attempts := list[0].Attempts
	if out := mustMailmig(t, dir, "queue", "flush", "--json"); strings.TrimSpace(out) != "{\n  \"flushed\": 1\n}" {
		t.Errorf("queue flush --json: %q", out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		json.Unmarshal([]byte(mustMailmig(t, dir, "queue", "list", "--json")), &list)
		if len(list) == 1 && list[0].Attempts > attempts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flush did not make the runner attempt %s: %+v\n%s", id, list, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, errOut, code := runMailmig(t, dir, "queue", "delete", "no-such-id"); code == 0 || !strings.Contains(errOut, "no such queue entry") {
		t.Errorf("delete of an unknown id: exit %d: %s", code, errOut)
	}
	if out := mustMailmig(t, dir, "queue", "delete", id); strings.TrimSpace(out) != id+": deleted" {
		t.Errorf("queue delete: %q", out)
	}
	if out := mustMailmig(t, dir, "queue", "list"); strings.TrimSpace(out) != "Mail queue is empty" {
		t.Errorf("queue list after delete:\n%s", out)
	}
	if v, _ := metricValue(scrape(t, s), "mailmig_outbound_queue_messages"); v != 0 {
		t.Errorf("outbound queue metric after delete: %v", v)
	}
	s.Stop()
	// Without a server: list works on the spool, flush says why not.
	if out := mustMailmig(t, dir, "queue", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("queue list --json without server: %q", out)
	}
	if _, errOut, code := runMailmig(t, dir, "queue", "flush"); code != 75 || !strings.Contains(errOut, "mailmig serve is not running") {
		t.Errorf("queue flush without server: exit %d: %s", code, errOut)
	}
	// delete without a server works on the spool itself.
	q := &outbound.Queue{Dir: filepath.Join(dir, "outbound"), Hostname: "localhost"}
	id2, err := q.Enqueue(t.Context(), "", []string{"x@remote.example"}, strings.NewReader("Subject: bounce\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if out := mustMailmig(t, dir, "queue", "list"); !strings.Contains(out, id2) || !strings.Contains(out, "<>") {
		t.Errorf("queue list of a bounce:\n%s", out)
	}
	if out := mustMailmig(t, dir, "queue", "delete", "--json", id2); !strings.Contains(out, id2) {
		t.Errorf("queue delete --json without server: %q", out)
	}
	if n, _ := q.Len(); n != 0 {
		t.Errorf("%d entries left after delete without server", n)
	}
}

// TestWhoKick: `mailmig who` lists the IMAP and submission sessions that
// logged in (user, protocol, the client's address); `mailmig kick`
// closes a user's and only that user's; the client sees the connection
// end.
func TestWhoKick(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	createUser(t, dir, "bob", "bob-pw")
	s := startServe(t, dir)
	a := imapLogin(t, s.Addr("imap"), "alice", "alice-pw")
	b := imapLogin(t, s.Addr("imap"), "bob", "bob-pw")
	// A connection that has not logged in is not listed (without --all).
	idle, err := net.Dial("tcp", s.Addr("imap"))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	sc, err := smtp.Dial(s.Addr("submission"))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := sc.Auth(saslPlain("alice", "alice-pw")); err != nil {
		t.Fatalf("submission AUTH: %v", err)
	}

	// bob on ManageSieve too (the --data listener is trusted: PLAIN in clear).
	ms, err := net.Dial("tcp", s.Addr("managesieve"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	ms.SetDeadline(time.Now().Add(10 * time.Second))
	msr := bufio.NewReader(ms)
	msReply := func() string {
		for {
			l, err := msr.ReadString('\n')
			if err != nil {
				t.Fatalf("managesieve: %v", err)
			}
			if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
				return l
			}
		}
	}
	msReply()
	fmt.Fprintf(ms, "AUTHENTICATE \"PLAIN\" \"%s\"\r\n", base64.StdEncoding.EncodeToString([]byte("\x00bob\x00bob-pw")))
	if l := msReply(); !strings.HasPrefix(l, "OK") {
		t.Fatalf("managesieve AUTHENTICATE: %q", l)
	}

	var who []sessions.Session
	if err := json.Unmarshal([]byte(mustMailmig(t, dir, "who", "--json")), &who); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, w := range who {
		got[w.User+"/"+w.Protocol] = w.Remote
		if w.Since.IsZero() || w.LoginAt.Before(w.Since) {
			t.Errorf("session times: %+v", w)
		}
	}
	if len(who) != 4 || got["alice/imap"] == "" || got["bob/imap"] == "" || got["alice/submission"] == "" || got["bob/managesieve"] == "" {
		t.Fatalf("who: %+v", who)
	}
	if h, _, err := net.SplitHostPort(got["bob/imap"]); err != nil || h != "127.0.0.1" {
		t.Errorf("bob's remote address %q", got["bob/imap"])
	}
	if out := mustMailmig(t, dir, "who"); !strings.Contains(out, "USER") || strings.Count(out, "alice") != 2 || !strings.Contains(out, "bob") {
		t.Errorf("who:\n%s", out)
	}
	var all []sessions.Session
	json.Unmarshal([]byte(mustMailmig(t, dir, "who", "--all", "--json")), &all)
	if len(all) != 5 {
		t.Errorf("who --all lists %d sessions, want 5: %+v", len(all), all)
	}

	// Kick alice's IMAP session only.
	var kicked []sessions.Session
	if err := json.Unmarshal([]byte(mustMailmig(t, dir, "kick", "--protocol", "imap", "--json", "alice")), &kicked); err != nil {
		t.Fatal(err)
	}
	if len(kicked) != 1 || kicked[0].User != "alice" || kicked[0].Protocol != "imap" {
		t.Fatalf("kick: %+v", kicked)
	}
	if err := a.Noop().Wait(); err == nil {
		t.Error("alice's IMAP session still answers after kick")
	}
	if err := b.Noop().Wait(); err != nil {
		t.Errorf("bob's session ended too: %v", err)
	}
	// Then every session of alice: submission.
	if out := mustMailmig(t, dir, "kick", "alice"); !strings.Contains(out, "alice: kicked submission session from 127.0.0.1:") {
		t.Errorf("kick alice: %q", out)
	}
	if err := sc.Noop(); err == nil {
		t.Error("alice's submission session still answers after kick")
	}
	json.Unmarshal([]byte(mustMailmig(t, dir, "who", "--json")), &who)
	if len(who) != 2 || who[0].User != "bob" || who[1].User != "bob" {
		t.Errorf("who after kick: %+v", who)
	}
	// Kicking bob ends his ManageSieve session as well.
	mustMailmig(t, dir, "kick", "bob")
	if _, err := fmt.Fprintf(ms, "NOOP\r\n"); err == nil {
		if l, err := msr.ReadString('\n'); err == nil {
			t.Errorf("bob's ManageSieve session answers after kick: %q", l)
		}
	}
	if _, errOut, code := runMailmig(t, dir, "kick", "nobody"); code != 1 || !strings.Contains(errOut, "nobody has no session") {
		t.Errorf("kick nobody: exit %d %s", code, errOut)
	}
	s.Stop()
	if _, errOut, code := runMailmig(t, dir, "who"); code != 75 || !strings.Contains(errOut, "mailmig serve is not running") {
		t.Errorf("who without server: exit %d: %s", code, errOut)
	}
}

// saslPlain is SASL PLAIN (RFC 4616) for go-smtp's client.
type saslPlainClient struct{ user, pass string }

func saslPlain(user, pass string) saslPlainClient { return saslPlainClient{user, pass} }

func (c saslPlainClient) Start() (string, []byte, error) {
	return "PLAIN", []byte("\x00" + c.user + "\x00" + c.pass), nil
}
func (c saslPlainClient) Next([]byte) ([]byte, error) { return nil, fmt.Errorf("unexpected challenge") }

// doveadmStatus is doveadm's mailbox status of every folder.
func doveadmStatus(t *testing.T, d *dovecottest.Doveadm) map[string]map[string]string {
	t.Helper()
	out, err := d.Run("-f", "json", "mailbox", "status", "messages unseen uidnext uidvalidity vsize", "*")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatal(err)
	}
	m := map[string]map[string]string{}
	for _, r := range rows {
		m[r["mailbox"]] = r
	}
	return m
}

// TestMailboxCommandsAgainstDoveadm: mailbox list and status report what
// doveadm reports on the same Maildir; mailbox resync gives a file
// dropped in behind mailmig's back a UID (dovecot then sees the same
// one) and forgets a removed one; quota recalc rebuilds a wrong
// maildirsize from the files, as doveadm counts their physical sizes.
func TestMailboxCommandsAgainstDoveadm(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServe(t, dir)
	for i := range 3 {
		lmtpDeliver(t, s, "x@example.net", "alice@example.org", fmt.Sprintf("Subject: m%d\n\nbody %d\nline\n", i, i))
	}
	c := imapLogin(t, s.Addr("imap"), "alice", "alice-pw")
	if err := c.Create("Work/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(imap.UIDSetNum(2, 3), "Work/2024").Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	s.Stop()

	maildir := filepath.Join(dir, "mail", "alice", "Maildir")
	var list []folderListing
	if err := json.Unmarshal([]byte(mustMailmig(t, dir, "mailbox", "list", "--json", "alice")), &list); err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, f := range list {
		ours = append(ours, f.Name)
	}
	var status []folderStatus
	if err := json.Unmarshal([]byte(mustMailmig(t, dir, "mailbox", "status", "--json", "alice")), &status); err != nil {
		t.Fatal(err)
	}
	d := dovecottest.New(t, maildir)
	ref := doveadmStatus(t, d)
	var theirs []string
	for name := range ref {
		theirs = append(theirs, name)
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	// dovecot lists the parent "Work" too (it exists on disk as a name
	// level only for us); compare the folders that hold mail.
	theirs = slices.DeleteFunc(theirs, func(n string) bool { return !slices.Contains(ours, n) && n == "Work" })
	if !slices.Equal(ours, theirs) {
		t.Fatalf("mailbox list %v, doveadm %v", ours, theirs)
	}
	if len(status) != len(ours) {
		t.Fatalf("mailbox status: %+v", status)
	}
	for _, st := range status {
		r := ref[st.Name]
		mine := map[string]string{"messages": strconv.Itoa(st.Messages), "unseen": strconv.Itoa(st.Unseen),
			"uidnext": strconv.FormatUint(uint64(st.UIDNext), 10), "uidvalidity": strconv.FormatUint(uint64(st.UIDValidity), 10),
			"vsize": strconv.FormatInt(st.VSize, 10)}
		for k, v := range mine {
			if r[k] != v {
				t.Errorf("%s %s: mailmig %s, doveadm %s", st.Name, k, v, r[k])
			}
		}
	}
	if status[0].Name != "INBOX" || status[0].Messages != 3 || status[0].Unseen != 2 {
		t.Errorf("INBOX status: %+v", status[0])
	}
	var one []folderStatus
	json.Unmarshal([]byte(mustMailmig(t, dir, "mailbox", "status", "--json", "alice", "Work/2024")), &one)
	if len(one) != 1 || one[0].Messages != 2 {
		t.Errorf("status of one folder: %+v", one)
	}
	if out := mustMailmig(t, dir, "mailbox", "status", "alice", "INBOX"); !strings.Contains(out, "UIDVALIDITY") || !strings.Contains(out, "INBOX") {
		t.Errorf("status table:\n%s", out)
	}
	if _, errOut, code := runMailmig(t, dir, "mailbox", "status", "alice", "Nope"); code == 0 || !strings.Contains(errOut, "Nope") {
		t.Errorf("status of a missing folder: exit %d: %s", code, errOut)
	}

	// Behind mailmig's back: a message file appears in INBOX (another
	// program delivered it), another disappears from Work/2024.
	dropped := "1700000000.M1P1.elsewhere,S=18:2,S"
	if err := os.WriteFile(filepath.Join(maildir, "cur", dropped), []byte("Subject: x\n\nhello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	work, _ := filepath.Glob(filepath.Join(maildir, ".Work.2024", "*", "*"))
	work = slices.DeleteFunc(work, func(p string) bool { return !strings.Contains(p, "/cur/") && !strings.Contains(p, "/new/") })
	if len(work) != 2 {
		t.Fatalf("Work/2024 files: %v", work)
	}
	os.Remove(work[0])
	var rep resyncReport
	if err := json.Unmarshal([]byte(mustMailmig(t, dir, "mailbox", "resync", "--json", "alice")), &rep); err != nil {
		t.Fatal(err)
	}
	uidlist, _ := os.ReadFile(filepath.Join(maildir, "dovecot-uidlist"))
	if !strings.Contains(string(uidlist), " :1700000000.M1P1.elsewhere,S=18\n") {
		t.Fatalf("resync did not give the new file a UID:\n%s", uidlist)
	}
	// dovecot reads our uidlist: same UID, same counts.
	ref = doveadmStatus(t, d)
	for _, st := range rep.Folders {
		if strconv.Itoa(st.Messages) != ref[st.Name]["messages"] || strconv.FormatUint(uint64(st.UIDNext), 10) != ref[st.Name]["uidnext"] {
			t.Errorf("after resync %s: mailmig %d messages UIDNEXT %d, doveadm %v", st.Name, st.Messages, st.UIDNext, ref[st.Name])
		}
	}
	if rep.Folders[0].Messages != 4 || rep.Folders[0].UIDNext != 5 {
		t.Errorf("INBOX after resync: %+v", rep.Folders[0])
	}
	uids, err := d.Run("-f", "flow", "fetch", "uid", "mailbox", "INBOX", "all")
	if err != nil || !strings.Contains(string(uids), "uid=4") {
		t.Errorf("doveadm fetch uid after resync: %v %s", err, uids)
	}

	// quota recalc: a wrong maildirsize is rebuilt from the files; the
	// byte count is the sum of what doveadm calls physical sizes.
	os.WriteFile(filepath.Join(maildir, "maildirsize"), []byte("1073741824S\n999999 99\n"), 0o600)
	var q quotaUsage
	if err := json.Unmarshal([]byte(mustMailmig(t, dir, "quota", "recalc", "--json", "alice")), &q); err != nil {
		t.Fatal(err)
	}
	sizes, err := d.Run("-f", "flow", "fetch", "size.physical", "mailbox", "*", "all")
	if err != nil {
		t.Fatal(err)
	}
	var total, n int64
	for _, f := range strings.Fields(string(sizes)) {
		if v, ok := strings.CutPrefix(f, "size.physical="); ok {
			x, _ := strconv.ParseInt(v, 10, 64)
			total += x
			n++
		}
	}
	if q.Bytes != total || q.Messages != n || !q.MaildirSize || n != 5 {
		t.Errorf("quota recalc: %+v; doveadm: %d bytes in %d messages", q, total, n)
	}
	md, _ := os.ReadFile(filepath.Join(maildir, "maildirsize"))
	if lines := strings.Split(strings.TrimSpace(string(md)), "\n"); len(lines) != 2 || lines[1] != fmt.Sprintf("%d %d", total, n) {
		t.Errorf("maildirsize after recalc:\n%s", md)
	}
	if out := mustMailmig(t, dir, "quota", "recalc", "alice"); !strings.Contains(out, fmt.Sprintf("alice: maildirsize rebuilt: %d bytes in %d messages", total, n)) {
		t.Errorf("quota recalc: %q", out)
	}
	// `mailmig quota USER` still reports (recalc is a subcommand).
	if out := mustMailmig(t, dir, "quota", "alice"); !strings.HasPrefix(out, "alice: ") {
		t.Errorf("quota alice: %q", out)
	}
}
