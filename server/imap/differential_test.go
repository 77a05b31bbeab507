package imap

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailmig/migrate/cclienttest"
)

// The differential harness: each file in testdata/sessions is a list of
// IMAP commands (one a line, "#" comments), run after login against
// mailmig's server and against Debian's dovecot imap (in PREAUTH mode,
// the same Maildir++ layout with "/" as separator, each on a fresh
// Maildir). Per command, the untagged responses (as a set: their order
// is not significant) and the tagged status with its response code must
// be the same; the human-readable text after the code may differ.

const dovecotIMAP = "/usr/lib/dovecot/imap"

// dovecotSession runs cmds through dovecot's imap binary as alice, with
// the uid of nobody (it refuses root), on a fresh tree of Maildirs
// (DIR/USER/Maildir, seeded from seed if not empty), and returns each
// command's responses. Other users' folders are in the shared namespace
// "shared/USER/", as mailmig has them.
func dovecotSession(t *testing.T, cmds []string, seed string) [][]string {
	t.Helper()
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install dovecot-imapd", dovecotIMAP)
	}
	dir, err := os.MkdirTemp("", "mailmig-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if seed != "" {
		copySeed(t, seed, dir)
	}
	if os.Geteuid() == 0 {
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				err = os.Lchown(p, 65534, 65534)
			}
			return err
		})
	}
	os.Chmod(dir, 0o777)
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "%u", "Maildir")+"\nnamespace inbox {\n  separator = /\n  inbox = yes\n"+dovecotSpecialUse+"}\n"+
		"namespace shared {\n  type = shared\n  separator = /\n  prefix = shared/%%u/\n  location = maildir:"+filepath.Join(dir, "%%u", "Maildir")+
		"\n  subscriptions = no\n  list = children\n}\n"+
		// RFC 4314 ACLs in dovecot-acl files, as mailmig keeps them.
		// RFC 9208 QUOTA as mailmig's default: one root over the whole
		// Maildir++ tree (maildirsize), 1 GiB of storage, no message
		// limit.
		"mail_plugins = acl quota\nprotocol imap {\n  mail_plugins = $mail_plugins imap_acl imap_quota\n}\nplugin {\n  acl = vfile\n  acl_anyone = allow\n  quota = maildir:\n  quota_rule = *:storage=1G\n}\n"+
		// No "* OK Still here" inside a script's IDLE (notify_test.go).
		"imap_idle_notify_interval = 30 mins\n"+
		// RFC 5464 METADATA (metadata_test.go).
		"imap_metadata = yes\nmail_attribute_dict = file:"+filepath.Join(dir, "%u", "dovecot-attributes")+"\n"), 0o644)
	d := startDovecotIMAP(t, dir, conf, nil)
	defer d.stop()
	cmd, stdin := d.cmd, d.stdin
	stdout := d.stdout
	// One command at a time, each after the previous reply: dovecot
	// stops at end of input without finishing pipelined commands.
	r := bufio.NewReader(stdout)
	var all strings.Builder
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	readUntil := func(tag string) {
		for {
			l, err := readResponse(r)
			all.WriteString(l)
			if err != nil {
				t.Fatalf("dovecot imap: %v\n%s", err, all.String())
			}
			if strings.HasPrefix(l, tag) {
				return
			}
		}
	}
	for i, c := range cmds {
		tag := fmt.Sprintf("t%d ", i)
		fmt.Fprintf(stdin, "%s%s\r\n", tag, substitute(t, c, all.String()))
		readUntil(tag)
	}
	fmt.Fprintf(stdin, "z LOGOUT\r\n")
	return splitByTag(t, all.String(), cmds)
}

// dovecotSpecialUse gives dovecot's personal namespace the RFC 6154
// special uses mailmig derives from folder names
// (mailstore.DefaultSpecialUse; dovecot's names are case-sensitive, so
// sessions use these spellings).
var dovecotSpecialUse = func() string {
	var b strings.Builder
	for _, m := range [][2]string{
		{"Sent", `\Sent`}, {"Sent Messages", `\Sent`}, {"Sent Items", `\Sent`},
		{"Drafts", `\Drafts`},
		{"Trash", `\Trash`}, {"Deleted Messages", `\Trash`}, {"Deleted Items", `\Trash`},
		{"Junk", `\Junk`}, {"Spam", `\Junk`},
		{"Archive", `\Archive`}, {"Archives", `\Archive`},
	} {
		fmt.Fprintf(&b, "  mailbox %q {\n    special_use = %s\n  }\n", m[0], m[1])
	}
	return b.String()
}()

// copySeed copies the tree seed (users' Maildirs: USER/Maildir/...) to
// dir, and gives every Maildir folder its cur, new and tmp (git keeps no
// empty directories).
func copySeed(t *testing.T, seed, dir string) {
	t.Helper()
	err := filepath.Walk(seed, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(seed, p)
		dst := filepath.Join(dir, rel)
		if fi.IsDir() {
			if err := os.MkdirAll(dst, 0o777); err != nil {
				return err
			}
			if b := filepath.Base(p); b == "Maildir" || (strings.HasPrefix(b, ".") && filepath.Base(filepath.Dir(p)) == "Maildir") {
				for _, sub := range []string{"cur", "new", "tmp"} {
					if err := os.MkdirAll(filepath.Join(dst, sub), 0o777); err != nil {
						return err
					}
				}
			}
			return os.Chmod(dst, 0o777)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o666)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mailmigSession runs cmds on our server as alice on a fresh tree of
// Maildirs (seeded from seed if not empty).
func mailmigSession(t *testing.T, cmds []string, seed string) [][]string {
	t.Helper()
	ts := startServer(t)
	if seed != "" {
		copySeed(t, seed, ts.dir)
	}
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	// Commands are pipelined, up to one that uses a value of an earlier
	// reply ($$V, $$M, $$HMS: see substitute).
	var all strings.Builder
	for i := 0; i < len(cmds); {
		var in strings.Builder
		j := i
		for ; j < len(cmds) && (j == i || !strings.Contains(cmds[j], "$$")); j++ {
			fmt.Fprintf(&in, "t%d %s\r\n", j, substitute(t, cmds[j], all.String()))
		}
		rc.send(in.String())
		for ; i < j; i++ {
			for {
				l, err := readResponse(rc.r)
				all.WriteString(l)
				if err != nil {
					t.Fatalf("mailmig imap: %v\n%s", err, all.String())
				}
				if strings.HasPrefix(l, fmt.Sprintf("t%d ", i)) {
					break
				}
			}
		}
	}
	return splitByTag(t, all.String(), cmds)
}

var (
	substRE = regexp.MustCompile(`\$\$(V|M|HMS)([+-]\d+)?`)
	varREs  = map[string]*regexp.Regexp{
		"V":   regexp.MustCompile(`UIDVALIDITY (\d+)`),
		"M":   regexp.MustCompile(`MODSEQ \((\d+)\)`),
		"HMS": regexp.MustCompile(`HIGHESTMODSEQ (\d+)`),
	}
)

// substitute replaces, in a session command, $$V by the last UIDVALIDITY
// the server sent, $$M by the last message mod-sequence (FETCH MODSEQ
// (n)) and $$HMS by the last HIGHESTMODSEQ, each optionally followed by
// +N or -N: the two servers choose different values, and RFC 7162's
// UNCHANGEDSINCE, CHANGEDSINCE and QRESYNC examples need the real ones.
func substitute(t *testing.T, cmd, transcript string) string {
	return substRE.ReplaceAllStringFunc(cmd, func(m string) string {
		sub := substRE.FindStringSubmatch(m)
		all := varREs[sub[1]].FindAllStringSubmatch(transcript, -1)
		if len(all) == 0 {
			t.Fatalf("%s: no %s in the replies so far", cmd, sub[1])
		}
		v, _ := strconv.ParseInt(all[len(all)-1][1], 10, 64)
		if sub[2] != "" {
			d, _ := strconv.ParseInt(sub[2], 10, 64)
			v += d
		}
		return strconv.FormatInt(v, 10)
	})
}

var literalEndRE = regexp.MustCompile(`~?\{(\d+)\}\r?\n$`)

// readResponse reads one response line with the literals in it, as sent.
func readResponse(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		l, err := r.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			return b.String(), err
		}
		m := literalEndRE.FindStringSubmatch(l)
		if m == nil {
			return b.String(), nil
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := io.ReadFull(r, lit); err != nil {
			return b.String(), err
		}
		b.Write(lit)
	}
}

// quoteLiterals writes the content of each literal of a response in Go
// quoted form, so a response is one comparable line.
func quoteLiterals(resp string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(resp, '\n')
		if i < 0 {
			b.WriteString(strings.TrimRight(resp, "\r"))
			return b.String()
		}
		l := resp[:i+1]
		resp = resp[i+1:]
		m := literalEndRE.FindStringSubmatch(l)
		if m == nil {
			b.WriteString(strings.TrimRight(l, "\r\n"))
			return b.String()
		}
		n, _ := strconv.Atoi(m[1])
		n = min(n, len(resp))
		b.WriteString(strings.TrimRight(l, "\r\n"))
		b.WriteString(strconv.Quote(resp[:n]))
		resp = resp[n:]
	}
}

// splitByTag groups a transcript into each command's responses: the
// untagged ones sorted, then the tagged status with its code.
func splitByTag(t *testing.T, transcript string, cmds []string) [][]string {
	t.Helper()
	n := len(cmds)
	out := make([][]string, n)
	var pending []string
	r := bufio.NewReader(strings.NewReader(transcript))
	i := 0
	for {
		resp, err := readResponse(r)
		if resp == "" && err != nil {
			break
		}
		l := quoteLiterals(resp)
		selecting := i < n && (strings.HasPrefix(strings.ToUpper(cmds[i]), "SELECT ") || strings.HasPrefix(strings.ToUpper(cmds[i]), "EXAMINE "))
		switch {
		case strings.HasPrefix(l, "* PREAUTH"), strings.HasPrefix(l, "* BYE"), l == "",
			// RFC 7162 §3.1.2.1: a server that keeps mod-sequences MUST
			// send HIGHESTMODSEQ on every SELECT/EXAMINE; dovecot sends
			// it only after CONDSTORE is enabled. Its value is ours.
			selecting && strings.HasPrefix(l, "* OK [HIGHESTMODSEQ "),
			// RFC 8474 §4.2: Debian's dovecot 2.3.19 has no OBJECTID
			// (objectid_test.go holds mailmig to the RFC's examples).
			selecting && strings.HasPrefix(l, "* OK [MAILBOXID "):
		case strings.HasPrefix(l, "+ "), l == "+":
			// A continuation request's text is for people.
			pending = append(pending, "+")
		case strings.HasPrefix(l, "* ID "):
			// RFC 2971 §3.2: the fields name the server; which ones
			// a server sends is its choice.
			pending = append(pending, normID(l))
		case strings.HasPrefix(l, "* ACL "), strings.HasPrefix(l, "* MYRIGHTS "), strings.HasPrefix(l, "* LISTRIGHTS "):
			pending = append(pending, normRights(l))
		case strings.HasPrefix(l, "* "):
			pending = append(pending, normStatusResp(normMetadata(normValues(normFetch(normAttrs(l))))))
		case i < n && strings.HasPrefix(l, fmt.Sprintf("t%d ", i)):
			pending = normExpunges(pending)
			slices.Sort(pending)
			out[i] = append(pending, normValues(normStatus(mailboxIDCodeRE.ReplaceAllString(strings.TrimPrefix(l, fmt.Sprintf("t%d ", i)), "$1"))))
			pending = nil
			i++
		}
	}
	if i != n {
		t.Fatalf("transcript has %d of %d tagged replies:\n%s", i, n, transcript)
	}
	return out
}

// mailboxIDCodeRE is CREATE's RFC 8474 §4.1 response code, which dovecot
// 2.3.19 (no OBJECTID) does not send: "OK [MAILBOXID (id)] text" is
// compared as "OK text".
var mailboxIDCodeRE = regexp.MustCompile(`^(OK) \[MAILBOXID \([A-Za-z0-9_-]+\)\]`)

var expungeRE = regexp.MustCompile(`^\* (\d+) EXPUNGE$`)

// normExpunges rewrites a command's EXPUNGE responses, in the order sent,
// to the sequence numbers the messages had before the first of them: a
// server may expunge in any order (dovecot goes from the highest, mailmig
// from the lowest; RFC 9051 §7.5.1), and the set it removed is what must
// agree.
func normExpunges(resp []string) []string {
	var gone []int // original numbers, ascending
	out := make([]string, 0, len(resp))
	for _, l := range resp {
		m := expungeRE.FindStringSubmatch(l)
		if m == nil {
			out = append(out, l)
			continue
		}
		orig, _ := strconv.Atoi(m[1])
		for _, g := range gone {
			if g <= orig {
				orig++
			}
		}
		gone = append(gone, orig)
		slices.Sort(gone)
		out = append(out, fmt.Sprintf("* %d EXPUNGE", orig))
	}
	return out
}

var statusRespRE = regexp.MustCompile(`^(\* STATUS .* \()([^()]*)\)$`)

// normStatusResp sorts the items of a STATUS response (RFC 9051 §7.4:
// attribute/value pairs; dovecot sends them in its own order).
func normStatusResp(l string) string {
	m := statusRespRE.FindStringSubmatch(l)
	if m == nil {
		return l
	}
	f := strings.Fields(m[2])
	if len(f)%2 != 0 {
		return l
	}
	pairs := make([]string, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		pairs = append(pairs, f[i]+" "+f[i+1])
	}
	slices.Sort(pairs)
	return m[1] + strings.Join(pairs, " ") + ")"
}

var idRE = regexp.MustCompile(`^\* ID (NIL|\((?:"(?:[^"\\]|\\.)*" (?:"(?:[^"\\]|\\.)*"|NIL) ?)+\))$`)

// normID checks an ID response is well formed (RFC 2971 §3.2: NIL or a
// list of field/value pairs) and drops the fields: they name the server.
func normID(l string) string {
	if idRE.MatchString(l) {
		return "* ID (...)"
	}
	return l
}

var rightsRespRE = regexp.MustCompile(`^\* (ACL|MYRIGHTS|LISTRIGHTS) ((?:"[^"]*"|\S)+) (.*)$`)

// normRights sorts what RFC 4314 makes sets: the rights in each rights
// string (§2.1), the identifier/rights pairs of ACL (§3.6), the
// optional rights groups of LISTRIGHTS after the required ones (§3.7).
func normRights(l string) string {
	m := rightsRespRE.FindStringSubmatch(l)
	if m == nil {
		return l
	}
	sortChars := func(s string) string {
		q := strings.HasPrefix(s, `"`)
		b := []byte(strings.Trim(s, `"`))
		slices.Sort(b)
		if q || len(b) == 0 {
			return `"` + string(b) + `"`
		}
		return string(b)
	}
	f := strings.Fields(m[3])
	switch m[1] {
	case "MYRIGHTS":
		if len(f) == 1 {
			return "* MYRIGHTS " + m[2] + " " + sortChars(f[0])
		}
	case "ACL":
		if len(f)%2 == 0 {
			var pairs []string
			for i := 0; i < len(f); i += 2 {
				pairs = append(pairs, f[i]+" "+sortChars(f[i+1]))
			}
			slices.Sort(pairs)
			return "* ACL " + m[2] + " " + strings.Join(pairs, " ")
		}
	case "LISTRIGHTS":
		if len(f) >= 2 {
			groups := make([]string, 0, len(f)-2)
			for _, g := range f[2:] {
				groups = append(groups, sortChars(g))
			}
			slices.Sort(groups)
			return "* LISTRIGHTS " + m[2] + " " + f[0] + " " + strings.Join(append([]string{sortChars(f[1])}, groups...), " ")
		}
	}
	return l
}

var fetchRE = regexp.MustCompile(`^(\* \d+ FETCH \()(.*)\)$`)

// normFetch sorts the items of a FETCH response by name: their order is
// not significant (RFC 9051 §7.5.2).
func normFetch(l string) string {
	m := fetchRE.FindStringSubmatch(l)
	if m == nil {
		return l
	}
	// Split at spaces outside (), [] and quoted strings.
	var toks []string
	depth, start, quoted := 0, 0, false
	s := m[2]
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == ' ' && depth == 0:
			toks = append(toks, s[start:i])
			start = i + 1
		}
	}
	toks = append(toks, s[start:])
	if len(toks)%2 != 0 {
		return l
	}
	items := make([]string, 0, len(toks)/2)
	for i := 0; i < len(toks); i += 2 {
		items = append(items, toks[i]+" "+toks[i+1])
	}
	slices.Sort(items)
	return m[1] + strings.Join(items, " ") + ")"
}

var listRE = regexp.MustCompile(`^(\* (?:LIST|LSUB) \()([^)]*)(\).*)$`)

// normAttrs sorts the attributes of a LIST/LSUB response: they are a set
// (RFC 9051 §7.3.1), so their order may differ.
func normAttrs(l string) string {
	m := listRE.FindStringSubmatch(l)
	if m == nil {
		return l
	}
	attrs := strings.Fields(m[2])
	slices.Sort(attrs)
	return m[1] + strings.Join(attrs, " ") + m[3]
}

var (
	uidValidityRE = regexp.MustCompile(`\[(UIDVALIDITY|APPENDUID|COPYUID) \d+`)
	// STATUS's (and LIST-STATUS's) UIDVALIDITY item (RFC 9051 §7.4): a
	// value the server picks.
	saveDateRE          = regexp.MustCompile(`SAVEDATE "\d\d-[A-Z][a-z][a-z]-\d{4} \d\d:\d\d:\d\d \+0000"`)
	statusUIDValidityRE = regexp.MustCompile(`^(\* STATUS .*[( ]UIDVALIDITY) \d+`)
	modseqRE            = regexp.MustCompile(`(MODSEQ|HIGHESTMODSEQ) \(?\d+`)
	flagListRE          = regexp.MustCompile(`^(\* FLAGS \(|\* OK \[PERMANENTFLAGS \(|\* \d+ FETCH \(.*FLAGS \()([^)]*)(\).*)$`)
)

// normValues replaces what legitimately differs between two servers on
// the same input: UIDVALIDITY values (a server picks them),
// and sorts flag lists (sets). Mod-sequences are for modseqAny or
// modseqRanks.
func normValues(l string) string {
	// The text after an untagged status's response code is for people.
	if strings.HasPrefix(l, "* OK [") || strings.HasPrefix(l, "* NO [") {
		if i := strings.IndexByte(l, ']'); i > 0 {
			l = l[:i+1]
		}
	}
	l = uidValidityRE.ReplaceAllString(l, "[$1 V")
	l = statusUIDValidityRE.ReplaceAllString(l, "$1 V")
	// RFC 8514 §4.1: when the message was saved, each server's own
	// moment (the format is kept: a date-time in UTC, or NIL).
	l = saveDateRE.ReplaceAllString(l, `SAVEDATE "DD-Mon-YYYY HH:MM:SS +0000"`)
	if m := flagListRE.FindStringSubmatch(l); m != nil {
		f := strings.Fields(m[2])
		slices.Sort(f)
		l = m[1] + strings.Join(f, " ") + m[3]
	}
	return l
}

var statusRE = regexp.MustCompile(`^(OK|NO|BAD)( \[[^\]]*\])?`)

// normStatus keeps the status and response code of a tagged reply.
func normStatus(s string) string {
	return statusRE.FindString(s)
}

// sessionOpts are a session file's "#!" directives.
type sessionOpts struct {
	// modseqOrder compares mod-sequences by their order in the
	// transcript instead of ignoring them ("#! modseq-order").
	modseqOrder bool
}

func readSession(t *testing.T, path string) ([]string, sessionOpts) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	var o sessionOpts
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "#! modseq-order":
			o.modseqOrder = true
		case strings.HasPrefix(l, "#! mbox "):
			cmds = append(cmds, mboxAppends(t, strings.TrimPrefix(l, "#! mbox "))...)
		case strings.HasPrefix(l, "+") && len(cmds) > 0:
			// Client data after a continuation request, e.g. IDLE's
			// DONE (RFC 2177): sent right after the command.
			cmds[len(cmds)-1] += "\r\n" + literals(l[1:])
		case l != "" && !strings.HasPrefix(l, "#"):
			cmds = append(cmds, literals(l))
		}
	}
	return cmds, o
}

// mboxAppends turns "#! mbox FILE [FOLDER]" into one APPEND a message of
// FILE, a file of ../shared/realworld-mbox (real mail from other
// projects' test data), into FOLDER (INBOX), with a fixed internal date:
// a message starts at each line beginning "From " at the start of the
// file or after an empty line; the From_ line is left out, the rest
// (line ends, ">From " quoting, 8-bit bytes) goes as it is.
func mboxAppends(t *testing.T, arg string) []string {
	t.Helper()
	name, folder, _ := strings.Cut(arg, " ")
	if folder == "" {
		folder = "INBOX"
	}
	b, err := os.ReadFile(filepath.Join(cclienttest.RealworldDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	start := -1
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		end := len(b)
		if j >= 0 {
			end = i + j + 1
		}
		if bytes.HasPrefix(b[i:], []byte("From ")) && (i == 0 || bytes.HasSuffix(b[:i], []byte("\n\n")) || bytes.HasSuffix(b[:i], []byte("\n\r\n"))) {
			if start >= 0 {
				msgs = append(msgs, string(b[start:i]))
			}
			start = end
		}
		i = end
	}
	if start >= 0 && start < len(b) {
		msgs = append(msgs, string(b[start:]))
	}
	if len(msgs) == 0 {
		t.Fatalf("%s: no message", name)
	}
	cmds := make([]string, 0, len(msgs))
	for _, m := range msgs {
		cmds = append(cmds, fmt.Sprintf("APPEND %s \"01-Jan-2001 00:00:00 +0000\" {%d+}\r\n%s", folder, len(m), m))
	}
	return cmds
}

var (
	literalRE = regexp.MustCompile(`([~=]?)<<(.*?)>>`)
	escapeRE  = regexp.MustCompile(`\\r\\n|\\x[0-9a-fA-F]{2}`)
)

// literals turns each <<text>> of a session line into a LITERAL+ literal
// ({n+} CRLF text), =<<text>> into a synchronizing one ({n}: the server
// sends a continuation request, RFC 9051 §7.5), and ~<<text>> into a
// binary one (~{n+}, RFC 3516),
// with \r\n in text meaning CRLF and \xHH the byte HH, so messages can be
// APPENDed from one-line commands.
func literals(l string) string {
	return literalRE.ReplaceAllStringFunc(l, func(m string) string {
		sub := literalRE.FindStringSubmatch(m)
		text := escapeRE.ReplaceAllStringFunc(sub[2], func(e string) string {
			if e == `\r\n` {
				return "\r\n"
			}
			b, _ := strconv.ParseUint(e[2:], 16, 8)
			return string([]byte{byte(b)})
		})
		if sub[1] == "=" {
			return fmt.Sprintf("{%d}\r\n%s", len(text), text)
		}
		return fmt.Sprintf("%s{%d+}\r\n%s", sub[1], len(text), text)
	})
}

var modseqValueRE = regexp.MustCompile(`(MODSEQ \(?|HIGHESTMODSEQ )(\d+)`)

// modseqRanks replaces every mod-sequence in a session's responses by its
// rank among the distinct values the session saw: two servers count
// differently, but the order of changes must be the same.
func modseqRanks(resp [][]string) [][]string {
	var vals []uint64
	for _, r := range resp {
		for _, l := range r {
			for _, m := range modseqValueRE.FindAllStringSubmatch(l, -1) {
				v, _ := strconv.ParseUint(m[2], 10, 64)
				vals = append(vals, v)
			}
		}
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	out := make([][]string, len(resp))
	for i, r := range resp {
		for _, l := range r {
			out[i] = append(out[i], modseqValueRE.ReplaceAllStringFunc(l, func(m string) string {
				sub := modseqValueRE.FindStringSubmatch(m)
				v, _ := strconv.ParseUint(sub[2], 10, 64)
				k, _ := slices.BinarySearch(vals, v)
				return fmt.Sprintf("%s#%d", sub[1], k+1)
			}))
		}
	}
	return out
}

// modseqAny replaces every mod-sequence value by M.
func modseqAny(resp [][]string) [][]string {
	out := make([][]string, len(resp))
	for i, r := range resp {
		for _, l := range r {
			out[i] = append(out[i], modseqRE.ReplaceAllString(l, "$1 M"))
		}
	}
	return out
}

// TestDovecotSessions runs every session file against both servers, each
// on a copy of the session's seed tree (testdata/sessions/NAME.d, users'
// Maildirs, if there is one).
func TestDovecotSessions(t *testing.T) {
	files, err := filepath.Glob("testdata/sessions/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no session files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			cmds, o := readSession(t, f)
			seed := strings.TrimSuffix(f, ".txt") + ".d"
			if _, err := os.Stat(seed); err != nil {
				seed = ""
			}
			theirs := dovecotSession(t, cmds, seed)
			ours := mailmigSession(t, cmds, seed)
			if o.modseqOrder {
				theirs, ours = modseqRanks(theirs), modseqRanks(ours)
			} else {
				theirs, ours = modseqAny(theirs), modseqAny(ours)
			}
			if os.Getenv("IMAP_DIFF_ALL") != "" {
				// Every reply of both servers, to read a session whole.
				for i, c := range cmds {
					t.Logf("%s\nmailmig:\n%s\ndovecot:\n%s", c, strings.Join(ours[i], "\n"), strings.Join(theirs[i], "\n"))
				}
			}
			for i, c := range cmds {
				if a, b := strings.Join(ours[i], "\n"), strings.Join(theirs[i], "\n"); a != b {
					t.Errorf("%s\nmailmig:\n%s\ndovecot:\n%s", c, a, b)
				}
			}
		})
	}
}
