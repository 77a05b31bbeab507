package imap

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"mailmig/mailstore/dovecottest"
)

// OBJECTID (RFC 8474): Debian's dovecot 2.3.19 does not offer it (no
// OBJECTID in its CAPABILITY, no MAILBOXID/EMAILID in its imap binary),
// so the dovecot differential (differential_test.go) drops the MAILBOXID
// codes dovecot cannot send. The RFC's examples are checked here against
// mailmig alone, and the same steps against Debian's Cyrus IMAP 3.6,
// which has OBJECTID, in cyrus_test.go.

// objectIDStep is one command of an RFC 8474 example and the responses
// it must get. In a pattern, {NAME} is an objectid: the first match binds
// NAME, later ones must repeat the value, and two names never share one
// value; "..." is any text. Commands may use {NAME} too. Untagged
// patterns are a set (each matches a different line); with exact, no
// other untagged line may come.
type objectIDStep struct {
	cmd      string
	untagged []string
	tagged   string
	exact    bool
	// grammar marks a step judged by RFC 8474 §7's grammar alone: Cyrus
	// reads SEARCH's objectid as any astring and answers OK, matching
	// nothing, where mailmig answers BAD (TestObjectIDCyrus skips it).
	grammar bool
}

var objectIDPatternRE = regexp.MustCompile(`\{([A-Za-z0-9]+)\}|\.\.\.`)

// compileObjectIDPattern turns a pattern into a regexp and the names of
// its groups.
func compileObjectIDPattern(p string) (*regexp.Regexp, []string) {
	var b strings.Builder
	var names []string
	last := 0
	for _, m := range objectIDPatternRE.FindAllStringSubmatchIndex(p, -1) {
		b.WriteString(regexp.QuoteMeta(p[last:m[0]]))
		if m[2] >= 0 {
			b.WriteString(`([A-Za-z0-9_-]+)`)
			names = append(names, p[m[2]:m[3]])
		} else {
			b.WriteString(`.*`)
		}
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(p[last:]))
	return regexp.MustCompile("^" + b.String() + "$"), names
}

// objectIDBindings checks the {NAME} rules of a session.
type objectIDBindings map[string]string

// match matches l against pattern p, binding names; it reports whether
// it matched and, when it matched with a clash, the error.
func (bind objectIDBindings) match(p, l string) (bool, error) {
	re, names := compileObjectIDPattern(p)
	m := re.FindStringSubmatch(l)
	if m == nil {
		return false, nil
	}
	for i, n := range names {
		v := m[i+1]
		if !validObjectID(v) {
			return true, fmt.Errorf("%s = %q is no RFC 8474 objectid", n, v)
		}
		if old, ok := bind[n]; ok && old != v {
			return true, fmt.Errorf("%s was %s, now %s", n, old, v)
		}
	}
	for i, n := range names {
		for other, v := range bind {
			if other != n && v == m[i+1] {
				return true, fmt.Errorf("%s and %s are both %s", n, other, v)
			}
		}
		bind[n] = m[i+1]
	}
	return true, nil
}

func (bind objectIDBindings) expand(cmd string) string {
	return objectIDPatternRE.ReplaceAllStringFunc(cmd, func(s string) string {
		if v, ok := bind[strings.Trim(s, "{}")]; ok {
			return v
		}
		return s
	})
}

// runObjectIDSteps runs steps on a logged-in raw session and returns
// each step's response lines. With errorf nil it only binds the names it
// can (for a server whose other responses differ, cyrus_test.go).
func runObjectIDSteps(t *testing.T, rc *rawConn, bind objectIDBindings, steps []objectIDStep, errorf func(string, ...any)) [][]string {
	t.Helper()
	if errorf == nil {
		errorf = func(string, ...any) {}
	}
	var out [][]string
	for i, st := range steps {
		tag := fmt.Sprintf("o%d", i)
		cmd := bind.expand(st.cmd)
		rc.send(tag + " " + cmd + "\r\n")
		lines := rc.until(tag + " ")
		for j := range lines {
			lines[j] = strings.TrimRight(lines[j], "\r\n")
		}
		out = append(out, lines)
		got := lines[len(lines)-1]
		if ok, err := bind.match(tag+" "+st.tagged, got); !ok || err != nil {
			errorf("%s: tagged %q, want %q (%v)", cmd, got, st.tagged, err)
			continue
		}
		used := make([]bool, len(lines)-1)
		for _, p := range st.untagged {
			found := false
			for j, l := range lines[:len(lines)-1] {
				if used[j] {
					continue
				}
				ok, err := bind.match(p, l)
				if err != nil {
					errorf("%s: %q: %v", cmd, l, err)
				}
				if ok {
					used[j], found = true, true
					break
				}
			}
			if !found {
				errorf("%s: no response matches %q in\n%s", cmd, p, strings.Join(lines, "\n"))
			}
		}
		if st.exact {
			for j, u := range used {
				if !u {
					errorf("%s: unexpected %q", cmd, lines[j])
				}
			}
		}
	}
	return out
}

// The messages of RFC 8474 §5.1's example: A, a reply to A, and C.
var (
	rfc8474MessageA = "From: Bron Gondwana <brong@example.com>\r\nTo: test@example.com\r\nSubject: Message A\r\n" +
		"Message-ID: <fake.1521475657.54797@example.com>\r\nDate: Tue, 20 Mar 2018 03:07:37 +1100\r\n\r\nThis is message A\r\n"
	rfc8474MessageB = "From: Bron Gondwana <brong@example.com>\r\nTo: test@example.com\r\nSubject: Re: Message A\r\n" +
		"Message-ID: <fake.1521475657.21213@example.org>\r\nReferences: <fake.1521475657.54797@example.com>\r\n" +
		"Date: Tue, 20 Mar 2018 03:07:37 +1100\r\n\r\nThis is a reply to message A\r\n"
	rfc8474MessageD = "From: Bron Gondwana <brong@example.com>\r\nTo: test@example.com\r\nSubject: Re: Message A\r\n" +
		"Message-ID: <fake.1521475657.33333@example.org>\r\nIn-Reply-To: <fake.1521475657.54797@example.com>\r\n" +
		"Date: Tue, 20 Mar 2018 03:07:37 +1100\r\n\r\nAnother reply to message A\r\n"
	rfc8474MessageC = "From: Bron Gondwana <brong@example.com>\r\nTo: test@example.com\r\nSubject: Message C\r\n" +
		"Message-ID: <fake.1521475657.60280@example.com>\r\nDate: Tue, 20 Mar 2018 03:07:37 +1100\r\n\r\nThis is message C\r\n"
)

func literalPlus(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }

// TestObjectIDRFCExamples replays every example of RFC 8474 (§4.1 CREATE,
// §4.2 SELECT, §4.3 STATUS and RENAME, §5.1 EMAILID across MOVE, §5.2
// THREADID, §6 SEARCH) on a raw session against the real server, with
// the RFC's response formats; the ids are the server's, so the example
// values become named ids (same name, same value). Beyond the examples:
// DELETE + CREATE of a name gives a new MAILBOXID, LIST RETURN (STATUS
// (MAILBOXID)) (RFC 5819 with §4.3), the MAILBOXID of a renamed parent's
// child, and RFC 8474 §7's syntax refusals.
func TestObjectIDRFCExamples(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	bind := objectIDBindings{}
	runObjectIDSteps(t, rc, bind, rfc8474Steps(), t.Errorf)
	// The forms of the ids (objectid.go): the mailbox GUID, and "M"/"T"
	// with 24 hex digits.
	for n, v := range bind {
		var re *regexp.Regexp
		switch n[0] {
		case 'F':
			re = regexp.MustCompile(`^[0-9a-f]{32}$`)
		case 'M':
			re = regexp.MustCompile(`^M[0-9a-f]{24}$`)
		case 'T':
			re = regexp.MustCompile(`^T[0-9a-f]{24}$`)
		}
		if !re.MatchString(v) {
			t.Errorf("%s = %q, want %s", n, v, re)
		}
	}
}

func TestValidObjectID(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"F2212ea87-6097-4256-9d51-71338625", true}, // RFC 8474 §4.1
		{"M6d99ac3275bb4e", true},                   // §5.1
		{"T64b478a75b7ea9", true},
		{"a_b-C", true},
		{strings.Repeat("x", 255), true},
		{strings.Repeat("x", 256), false},
		{"", false},
		{"M.1", false},
		{"a b", false},
		{"é", false},
		{"(x)", false},
	} {
		if got := validObjectID(tc.s); got != tc.ok {
			t.Errorf("validObjectID(%q) = %v", tc.s, got)
		}
	}
}

// FuzzObjectIDSearch: SEARCH EMAILID/THREADID never takes an argument
// that is no objectid, and the parser never panics.
func FuzzObjectIDSearch(f *testing.F) {
	for _, s := range []string{
		"EMAILID M6d99ac3275bb4e",
		"THREADID T64b478a75b7ea9",
		"OR EMAILID M1 NOT THREADID T-_x",
		"EMAILID {3+}\r\nabc",
		"EMAILID \"M1\"",
		"(EMAILID M1 THREADID)",
		"EMAILID " + strings.Repeat("z", 256),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := bufio.NewReader(strings.NewReader(s + "\r\n"))
		line, err := readLine(r, nil)
		if err != nil {
			return
		}
		keys, err := parseSearchKeys(&parser{r: r, line: line}, 0)
		if err != nil {
			return
		}
		var check func(k *searchKey)
		check = func(k *searchKey) {
			if (k.op == "EMAILID" || k.op == "THREADID") && !validObjectID(k.value) {
				t.Fatalf("%q: %s %q accepted", s, k.op, k.value)
			}
			for i := range k.sub {
				check(&k.sub[i])
			}
		}
		for i := range keys {
			check(&keys[i])
		}
	})
}

// resetIDCaches forgets every computed EMAILID/THREADID, as a new process
// would start.
func resetIDCaches() {
	idCaches.Lock()
	idCaches.m = map[string]*folderIDCache{}
	idCaches.Unlock()
}

var (
	objectIDFetchRE  = regexp.MustCompile(`^\* \d+ FETCH \(UID (\d+) EMAILID \((\S+)\) THREADID \((\S+)\)\)`)
	objectIDStatusRE = regexp.MustCompile(`^\* STATUS \S+ \(MAILBOXID \((\S+)\) UIDVALIDITY (\d+)\)`)
)

// objectIDState is what a client caches of a mailbox by RFC 8474's ids.
type objectIDState struct {
	mailboxID, uidValidity string
	byUID                  map[string][2]string // UID -> EMAILID, THREADID
}

func readObjectIDState(t *testing.T, addr, mailbox string) objectIDState {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	st := objectIDState{byUID: map[string][2]string{}}
	rc.send("s STATUS " + mailbox + " (MAILBOXID UIDVALIDITY)\r\n")
	for _, l := range rc.until("s ") {
		if m := objectIDStatusRE.FindStringSubmatch(l); m != nil {
			st.mailboxID, st.uidValidity = m[1], m[2]
		}
	}
	rc.send("e EXAMINE " + mailbox + "\r\nf UID FETCH 1:* (EMAILID THREADID)\r\n")
	rc.until("e ")
	for _, l := range rc.until("f ") {
		if m := objectIDFetchRE.FindStringSubmatch(l); m != nil {
			st.byUID[m[1]] = [2]string{m[2], m[3]}
		}
	}
	rc.send("z LOGOUT\r\n")
	if st.mailboxID == "" {
		t.Fatalf("no MAILBOXID for %s", mailbox)
	}
	return st
}

// TestObjectIDsSurviveRestart: after a restart (caches gone, as in a new
// process) every MAILBOXID, EMAILID and THREADID is what it was. When
// dovecot-uidlist is lost while the server is down (a reindex: new
// UIDVALIDITY, UIDs handed out again), the mailbox gets a new MAILBOXID,
// which RFC 8474 §4 allows with a new UIDVALIDITY, and every message
// keeps its EMAILID and THREADID (they come from its content). A message
// without Message-ID, References or In-Reply-To is a thread of its own.
func TestObjectIDsSurviveRestart(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\nc CREATE box\r\n")
	rc.until("c ")
	for i, m := range []string{rfc8474MessageA, rfc8474MessageB, rfc8474MessageC, "Subject: no ids\r\n\r\nalone\r\n"} {
		tag := fmt.Sprintf("a%d", i)
		rc.send(tag + " APPEND box " + literalPlus(m) + "\r\n")
		if l := rc.until(tag + " "); !strings.HasPrefix(l[len(l)-1], tag+" OK") {
			t.Fatal(l)
		}
	}
	rc.send("z LOGOUT\r\n")
	before := readObjectIDState(t, ts.address(), "box")
	if len(before.byUID) != 4 {
		t.Fatalf("fetched %v", before.byUID)
	}
	if a, b, c := before.byUID["1"], before.byUID["2"], before.byUID["3"]; a[1] != b[1] || a[1] == c[1] {
		t.Errorf("threads: A %v, reply %v, C %v", a, b, c)
	}
	if alone := before.byUID["4"]; alone[1] != "T"+alone[0][1:] {
		t.Errorf("message without ids: %v", alone)
	}

	ts.restart(t, resetIDCaches)
	after := readObjectIDState(t, ts.address(), "box")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after a restart:\n%v\nbefore:\n%v", after, before)
	}

	dir := filepath.Join(ts.dir, "alice", "Maildir", ".box")
	ts.restart(t, func() {
		resetIDCaches()
		if err := os.Remove(filepath.Join(dir, "dovecot-uidlist")); err != nil {
			t.Fatal(err)
		}
	})
	rebuilt := readObjectIDState(t, ts.address(), "box")
	if rebuilt.uidValidity == before.uidValidity || rebuilt.mailboxID == before.mailboxID {
		t.Errorf("uidlist rebuilt: UIDVALIDITY %s MAILBOXID %s, before %s %s", rebuilt.uidValidity, rebuilt.mailboxID, before.uidValidity, before.mailboxID)
	}
	ids := func(s objectIDState) []string {
		var out []string
		for _, v := range s.byUID {
			out = append(out, v[0]+" "+v[1])
		}
		slices.Sort(out)
		return out
	}
	if a, b := ids(rebuilt), ids(before); !slices.Equal(a, b) {
		t.Errorf("after the uidlist was rebuilt: %v, before %v", a, b)
	}
}

// TestObjectIDMailboxIDRaceDovecot: a folder whose dovecot-uidlist has no
// mailbox GUID (written by an old dovecot) gets one on first use, and
// IMAP sessions asking at the same moment, together with a second store
// on the same tree (another process: mailmig deliver, the converter), all
// get the same MAILBOXID. Debian's doveadm, on a copy of the Maildir,
// reports that value as the folder's guid (and every other folder's
// MAILBOXID as its guid) and logs no complaint about the tree.
func TestObjectIDMailboxIDRaceDovecot(t *testing.T) {
	ts := startServer(t)
	maildir := filepath.Join(ts.dir, "alice", "Maildir")
	st := ts.store(t, "alice")
	for _, n := range []string{"old", "new"} {
		if err := st.CreateFolder(n); err != nil {
			t.Fatal(err)
		}
	}
	old := filepath.Join(maildir, ".old")
	if err := os.WriteFile(filepath.Join(old, "cur", "1700000000.M1P1.host:2,S"), []byte("Subject: old\n\nx\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "dovecot-uidlist"), []byte("3 V1700000000 N2\n1 :1700000000.M1P1.host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const sessions = 4
	got := make([]string, sessions+1)
	conns := make([]*rawConn, sessions)
	for i := range conns {
		conns[i] = dialRaw(t, ts.addr)
		conns[i].send("l LOGIN alice pw-alice\r\n")
		conns[i].until("l ")
	}
	re := regexp.MustCompile(`^\* STATUS old \(MAILBOXID \(([0-9a-f]{32})\)\)`)
	done := make(chan struct{})
	for i, rc := range conns {
		go func() {
			defer func() { done <- struct{}{} }()
			rc.send("s STATUS old (MAILBOXID)\r\n")
			for _, l := range rc.until("s ") {
				if m := re.FindStringSubmatch(l); m != nil {
					got[i] = m[1]
				}
			}
		}()
	}
	go func() {
		defer func() { done <- struct{}{} }()
		other := ts.store(t, "alice")
		f, err := other.Folder("old")
		if err == nil {
			got[sessions], err = f.MailboxGUID(t.Context())
		}
		if err != nil {
			t.Error(err)
		}
	}()
	for range sessions + 1 {
		<-done
	}
	for _, g := range got {
		if g == "" || g != got[0] {
			t.Fatalf("MAILBOXIDs of racing sessions and store: %q", got)
		}
	}
	ours := map[string]string{"old": got[0]}
	for _, n := range []string{"INBOX", "new"} {
		rc := conns[0]
		rc.send("t STATUS " + n + " (MAILBOXID)\r\n")
		for _, l := range rc.until("t ") {
			if m := regexp.MustCompile(`^\* STATUS \S+ \(MAILBOXID \((\S+)\)\)`).FindStringSubmatch(l); m != nil {
				ours[n] = m[1]
			}
		}
	}
	cp := filepath.Join(t.TempDir(), "Maildir")
	if out, err := exec.Command("cp", "-a", maildir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	out, err := dovecottest.New(t, cp).Run("-f", "json", "mailbox", "status", "guid", "*")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rows) != len(ours) {
		t.Errorf("dovecot lists %v, we have %v", rows, ours)
	}
	for _, r := range rows {
		if ours[r["mailbox"]] != r["guid"] {
			t.Errorf("%s: MAILBOXID %q, dovecot's guid %q", r["mailbox"], ours[r["mailbox"]], r["guid"])
		}
	}
}

// TestEmailIDIsContentHash: EMAILID is "M" and the first 24 hex digits of
// the SHA-256 of exactly the bytes FETCH RFC822 sends, whether the server
// reads the message whole or streams it (BigMessage = 1), for messages
// with bare LFs, a lone CR, lines longer than the read buffer and no
// final line end; and THREADID takes the References root even behind a
// header line longer than the read buffer.
func TestEmailIDIsContentHash(t *testing.T) {
	mem := startServer(t)
	stream := startServer(t, func(o *Options, _ *ListenerOptions) {
		o.Limits.BigMessage = 1
		o.MaildirFor = mem.srv.opts.MaildirFor
	})
	long := strings.Repeat("0123456789", 7000)
	msgs := []string{
		"Subject: plain\r\n\r\nbody\r\n",
		"Subject: bare LF\nReferences: <root@x> <mid@x>\n\nline\nline\n",
		"Subject: lone CR\r\n\r\na\rb\r\n\r\nno final line end",
		"Subject: long\r\nX-Long: " + long + "\r\nIn-Reply-To: <parent@x>\r\n\r\n" + long + "\r\n" + long + "\n",
	}
	wantThread := []string{"", "root@x", "", "parent@x"}
	rc := dialRaw(t, mem.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	for i, m := range msgs {
		tag := fmt.Sprintf("a%d", i)
		rc.send(tag + " APPEND INBOX " + literalPlus(m) + "\r\n")
		if l := rc.until(tag + " "); !strings.HasPrefix(l[len(l)-1], tag+" OK") {
			t.Fatal(l)
		}
	}
	emailRE := regexp.MustCompile(`EMAILID \((M[0-9a-f]{24})\)`)
	threadRE := regexp.MustCompile(`THREADID \((T[0-9a-f]{24})\)`)
	literalRE := regexp.MustCompile(`RFC822 \{(\d+)\}\r\n`)
	var first []string
	for _, addr := range []string{mem.addr, stream.addr} {
		resetIDCaches()
		rc := dialRaw(t, addr)
		rc.send("l LOGIN alice pw-alice\r\ns SELECT INBOX\r\n")
		rc.until("s ")
		var got []string
		for i := range msgs {
			rc.send(fmt.Sprintf("f UID FETCH %d (EMAILID THREADID RFC822)\r\n", i+1))
			resp, err := readResponse(rc.r)
			if err != nil {
				t.Fatal(err)
			}
			rc.until("f ")
			m := literalRE.FindStringSubmatchIndex(resp)
			e, th := emailRE.FindStringSubmatch(resp), threadRE.FindStringSubmatch(resp)
			if m == nil || e == nil || th == nil {
				t.Fatalf("%s: %q", addr, resp[:min(len(resp), 200)])
			}
			var n int
			fmt.Sscan(resp[m[2]:m[3]], &n)
			body := resp[m[1] : m[1]+n]
			sum := sha256.Sum256([]byte(body))
			if want := "M" + hex.EncodeToString(sum[:12]); e[1] != want {
				t.Errorf("%s message %d: EMAILID %s, SHA-256 of its RFC822 %s", addr, i+1, e[1], want)
			}
			wt := "T" + e[1][1:]
			if wantThread[i] != "" {
				s := sha256.Sum256([]byte(wantThread[i]))
				wt = "T" + hex.EncodeToString(s[:12])
			}
			if th[1] != wt {
				t.Errorf("%s message %d: THREADID %s, want %s", addr, i+1, th[1], wt)
			}
			got = append(got, e[1]+" "+th[1])
		}
		if first == nil {
			first = got
		} else if !slices.Equal(first, got) {
			t.Errorf("streamed: %v, read whole: %v", got, first)
		}
	}
}

// rfc8474Steps are the RFC 8474 examples (§4.1-§6) and the cases around
// them that TestObjectIDRFCExamples and TestObjectIDCyrus run.
func rfc8474Steps() []objectIDStep {
	return []objectIDStep{
		{cmd: "CAPABILITY", untagged: []string{"* CAPABILITY ... OBJECTID..."}, tagged: "OK ...", exact: true},
		// §4.1
		{cmd: "create foo", tagged: "OK [MAILBOXID ({F1})] ...", exact: true},
		{cmd: "create bar", tagged: "OK [MAILBOXID ({F2})] ...", exact: true},
		{cmd: "create foo", tagged: "NO ...", exact: true},
		// §4.3: STATUS, and the id stays with a renamed mailbox.
		{cmd: "status foo (mailboxid)", untagged: []string{"* STATUS foo (MAILBOXID ({F1}))"}, tagged: "OK ...", exact: true},
		{cmd: "rename foo renamed", tagged: "OK ...", exact: true},
		{cmd: "status renamed (mailboxid)", untagged: []string{"* STATUS renamed (MAILBOXID ({F1}))"}, tagged: "OK ...", exact: true},
		{cmd: "status bar (mailboxid)", untagged: []string{"* STATUS bar (MAILBOXID ({F2}))"}, tagged: "OK ...", exact: true},
		{cmd: "status foo (mailboxid)", tagged: "NO ...", exact: true},
		// §4.2
		{cmd: `select "renamed"`, untagged: []string{"* OK [MAILBOXID ({F1})] ..."}, tagged: "OK [READ-WRITE] ..."},
		{cmd: `examine "bar"`, untagged: []string{"* OK [CLOSED]...", "* OK [MAILBOXID ({F2})] ..."}, tagged: "OK [READ-ONLY] ..."},
		{cmd: "unselect", tagged: "OK ...", exact: true},
		// A name deleted and created again is a new mailbox.
		{cmd: "delete bar", tagged: "OK ...", exact: true},
		{cmd: "create bar", tagged: "OK [MAILBOXID ({F3})] ...", exact: true},
		// Children keep theirs when their parent is renamed.
		{cmd: "create bar/child", tagged: "OK [MAILBOXID ({F4})] ...", exact: true},
		{cmd: "rename bar baz", tagged: "OK ...", exact: true},
		{cmd: "status baz/child (mailboxid uidvalidity)", untagged: []string{"* STATUS baz/child (MAILBOXID ({F4}) UIDVALIDITY ...)"}, tagged: "OK ...", exact: true},
		{cmd: `list "" "*" return (status (mailboxid))`, untagged: []string{
			`* LIST (...) "/" INBOX`, `* STATUS INBOX (MAILBOXID ({FI}))`,
			`* LIST (...) "/" renamed`, `* STATUS renamed (MAILBOXID ({F1}))`,
			`* LIST (...) "/" baz`, `* STATUS baz (MAILBOXID ({F3}))`,
			`* LIST (...) "/" baz/child`, `* STATUS baz/child (MAILBOXID ({F4}))`,
		}, tagged: "OK ...", exact: true},
		// §5.1
		{cmd: `append inbox "20-Mar-2018 03:07:37 +1100" ` + literalPlus(rfc8474MessageA), tagged: "OK [APPENDUID ... 1] ...", exact: true},
		{cmd: `append inbox "20-Mar-2018 03:07:37 +1100" ` + literalPlus(rfc8474MessageB), tagged: "OK [APPENDUID ... 2] ...", exact: true},
		{cmd: `append inbox "20-Mar-2018 03:07:37 +1100" ` + literalPlus(rfc8474MessageC), tagged: "OK [APPENDUID ... 3] ...", exact: true},
		{cmd: `select inbox`, untagged: []string{"* OK [MAILBOXID ({FI})] ..."}, tagged: "OK [READ-WRITE] ..."},
		{cmd: "fetch 1:* (emailid threadid)", untagged: []string{
			"* 1 FETCH (EMAILID ({M1}) THREADID ({T1}))",
			"* 2 FETCH (EMAILID ({M2}) THREADID ({T1}))",
			"* 3 FETCH (EMAILID ({M3}) THREADID ({T2}))",
		}, tagged: "OK ...", exact: true},
		// The session held 3 \Recent messages: moving one away lowers the
		// count, which dovecot announces (testdata/twosessions).
		{cmd: "move 2 renamed", untagged: []string{"* OK [COPYUID ... 2 1] ...", "* 2 EXPUNGE", "* 2 RECENT"}, tagged: "OK ...", exact: true},
		{cmd: "fetch 1:* (emailid threadid)", untagged: []string{
			"* 1 FETCH (EMAILID ({M1}) THREADID ({T1}))",
			"* 2 FETCH (EMAILID ({M3}) THREADID ({T2}))",
		}, tagged: "OK ...", exact: true},
		// §6
		{cmd: "search emailid {M1}", untagged: []string{"* SEARCH 1"}, tagged: "OK ...", exact: true},
		{cmd: "search threadid {T1}", untagged: []string{"* SEARCH 1"}, tagged: "OK ...", exact: true},
		{cmd: "search emailid {M1} threadid {T1}", untagged: []string{"* SEARCH 1"}, tagged: "OK ...", exact: true},
		{cmd: "uid search emailid {M3}", untagged: []string{"* SEARCH 3"}, tagged: "OK ...", exact: true},
		{cmd: "search emailid {M2}", untagged: []string{"* SEARCH"}, tagged: "OK ...", exact: true},
		{cmd: "search or threadid {T2} emailid {M1}", untagged: []string{"* SEARCH 1 2"}, tagged: "OK ...", exact: true},
		{cmd: "search not threadid {T1}", untagged: []string{"* SEARCH 2"}, tagged: "OK ...", exact: true},
		{cmd: "uid fetch 3 (uid emailid)", untagged: []string{"* 2 FETCH (UID 3 EMAILID ({M3}))"}, tagged: "OK ...", exact: true},
		// The moved message keeps its EMAILID and THREADID (§5.1 SHOULD).
		{cmd: `select "renamed"`, untagged: []string{"* OK [MAILBOXID ({F1})] ..."}, tagged: "OK [READ-WRITE] ..."},
		{cmd: "fetch 1:* (emailid threadid)", untagged: []string{"* 1 FETCH (EMAILID ({M2}) THREADID ({T1}))"}, tagged: "OK ...", exact: true},
		{cmd: "search threadid {T1}", untagged: []string{"* SEARCH 1"}, tagged: "OK ...", exact: true},
		// A COPY is the same message too; the copy's thread is the same.
		{cmd: "copy 1 inbox", untagged: []string{}, tagged: "OK [COPYUID ... 1 4] ...", exact: true},
		{cmd: "examine inbox", untagged: []string{"* OK [CLOSED]...", "* OK [MAILBOXID ({FI})] ..."}, tagged: "OK [READ-ONLY] ..."},
		{cmd: "uid fetch 4 (emailid threadid)", untagged: []string{"* 3 FETCH (UID 4 EMAILID ({M2}) THREADID ({T1}))"}, tagged: "OK ...", exact: true},
		{cmd: "search threadid {T1}", untagged: []string{"* SEARCH 1 3"}, tagged: "OK ...", exact: true},
		// Beyond the examples (INBOX is examined: EXISTS follows each
		// APPEND): a message without any message id is a thread of its
		// own; a reply that has only In-Reply-To joins its parent's
		// thread; identical bytes are one EMAILID.
		{cmd: `append inbox ` + literalPlus("Subject: no ids\r\n\r\nalone\r\n"), untagged: []string{"* 4 EXISTS"}, tagged: "OK [APPENDUID ... 5] ...", exact: true},
		{cmd: `append inbox ` + literalPlus(rfc8474MessageD), untagged: []string{"* 5 EXISTS"}, tagged: "OK [APPENDUID ... 6] ...", exact: true},
		{cmd: `append inbox ` + literalPlus(rfc8474MessageC), untagged: []string{"* 6 EXISTS"}, tagged: "OK [APPENDUID ... 7] ...", exact: true},
		{cmd: "uid fetch 5:* (emailid threadid)", untagged: []string{
			"* 4 FETCH (UID 5 EMAILID ({M4}) THREADID ({T3}))",
			"* 5 FETCH (UID 6 EMAILID ({M5}) THREADID ({T1}))",
			"* 6 FETCH (UID 7 EMAILID ({M3}) THREADID ({T2}))",
		}, tagged: "OK ...", exact: true},
		// §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-").
		{cmd: "search emailid M.1", tagged: "BAD ...", exact: true, grammar: true},
		{cmd: "search threadid " + strings.Repeat("T", 256), tagged: "BAD ...", exact: true, grammar: true},
		{cmd: "search emailid", tagged: "BAD ...", exact: true},
		{cmd: "search emailid " + strings.Repeat("a_-Z9", 51), untagged: []string{"* SEARCH"}, tagged: "OK ...", exact: true},
		{cmd: "fetch 1 (emailids)", tagged: "BAD ...", exact: true},
		{cmd: "status inbox (mailboxids)", tagged: "BAD ...", exact: true},
	}
}

// TestIDCachePrunesExpunged: the ids kept for messages that are gone are
// dropped once they outnumber the live ones (the cache is not a leak on
// a folder with a long history of deliveries and expunges).
func TestIDCachePrunesExpunged(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\na APPEND INBOX " + literalPlus(rfc8474MessageA) + "\r\n")
	rc.until("a ")
	f, err := ts.store(t, "alice").Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fc := idCacheFor(f, snap.UIDValidity)
	fc.mu.Lock()
	for u := uint32(1000); u < 3000; u++ {
		fc.ids[u] = &msgObjectIDs{haveEmail: true}
	}
	fc.mu.Unlock()
	rc.send("s SELECT INBOX\r\n")
	rc.until("s ")
	rc.send("f FETCH 1 (EMAILID)\r\n")
	if l := rc.until("f "); !strings.HasPrefix(l[0], "* 1 FETCH (EMAILID (M") {
		t.Fatalf("%q", l)
	}
	fc.mu.Lock()
	n := len(fc.ids)
	fc.mu.Unlock()
	if n != 1 {
		t.Errorf("%d ids kept for a folder of 1 message", n)
	}
}
