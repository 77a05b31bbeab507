package imap

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	netmail "net/mail"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"mailmig/mailstore"
)

// searchKey is one node of a SEARCH program (RFC 9051 §6.4.4).
type searchKey struct {
	op    string // ALL SEQ UID FLAG NOTFLAG NOT OR AND LARGER SMALLER BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE HEADER BODY TEXT RECENT NEW OLD
	set   imap.SeqSet
	flag  string
	n     int64
	date  time.Time
	field string
	value string
	sub   []searchKey
}

// usesModSeq tells whether k has a MODSEQ key (RFC 7162 §3.1.5).
func (k *searchKey) usesModSeq() bool {
	if k.op == "MODSEQ" {
		return true
	}
	for i := range k.sub {
		if k.sub[i].usesModSeq() {
			return true
		}
	}
	return false
}

// needsContent tells whether evaluating k reads the message.
func (k *searchKey) needsContent() bool {
	switch k.op {
	case "HEADER", "BODY", "TEXT", "SENTBEFORE", "SENTON", "SENTSINCE":
		return true
	}
	for i := range k.sub {
		if k.sub[i].needsContent() {
			return true
		}
	}
	return false
}

// parseSearchKeys reads search keys until the end of the line or ')'.
func parseSearchKeys(p *parser, depth int) ([]searchKey, error) {
	if depth > 50 {
		return nil, p.errorf("search program nested too deeply")
	}
	var keys []searchKey
	for {
		k, err := parseSearchKey(p, depth)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		if p.eol() || p.peek() == ')' {
			return keys, nil
		}
		if err := p.sp(); err != nil {
			return nil, err
		}
	}
}

func parseSearchKey(p *parser, depth int) (searchKey, error) {
	if p.take('(') {
		sub, err := parseSearchKeys(p, depth+1)
		if err != nil {
			return searchKey{}, err
		}
		if err := p.expect(')'); err != nil {
			return searchKey{}, err
		}
		return searchKey{op: "AND", sub: sub}, nil
	}
	if c := p.peek(); c == '*' || c == '$' || (c >= '0' && c <= '9') {
		set, err := p.numSet()
		return searchKey{op: "SEQ", set: set}, err
	}
	a, err := p.atom()
	if err != nil {
		return searchKey{}, err
	}
	a = strings.ToUpper(a)
	str := func() (string, error) {
		if err := p.sp(); err != nil {
			return "", err
		}
		return p.astring()
	}
	date := func() (time.Time, error) {
		if err := p.sp(); err != nil {
			return time.Time{}, err
		}
		return p.date()
	}
	num := func() (int64, error) {
		if err := p.sp(); err != nil {
			return 0, err
		}
		return p.number64()
	}
	flagKeys := map[string]string{
		"ANSWERED": `\Answered`, "DELETED": `\Deleted`, "DRAFT": `\Draft`,
		"FLAGGED": `\Flagged`, "SEEN": `\Seen`,
	}
	switch a {
	case "ALL":
		return searchKey{op: "ALL"}, nil
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		return searchKey{op: "FLAG", flag: flagKeys[a]}, nil
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		return searchKey{op: "NOTFLAG", flag: flagKeys[a[2:]]}, nil
	case "KEYWORD", "UNKEYWORD":
		if err := p.sp(); err != nil {
			return searchKey{}, err
		}
		f, err := p.flag()
		op := "FLAG"
		if a == "UNKEYWORD" {
			op = "NOTFLAG"
		}
		return searchKey{op: op, flag: string(f)}, err
	case "NEW", "OLD", "RECENT", "SAVEDATESUPPORTED":
		return searchKey{op: a}, nil
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		v, err := str()
		return searchKey{op: "HEADER", field: a, value: v}, err
	case "HEADER":
		f, err := str()
		if err != nil {
			return searchKey{}, err
		}
		v, err := str()
		return searchKey{op: "HEADER", field: f, value: v}, err
	case "BODY", "TEXT":
		v, err := str()
		return searchKey{op: a, value: v}, err
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE",
		"SAVEDBEFORE", "SAVEDON", "SAVEDSINCE": // RFC 8514 §4.2 (savedate.go)
		d, err := date()
		return searchKey{op: a, date: d}, err
	case "LARGER", "SMALLER":
		n, err := num()
		return searchKey{op: a, n: n}, err
	case "OLDER", "YOUNGER":
		// RFC 5032 WITHIN (within.go).
		n, err := num()
		if err == nil && n == 0 {
			err = p.errorf("%s needs an interval of at least 1 second", a)
		}
		return searchKey{op: a, n: n, date: time.Now()}, err
	case "MODSEQ":
		// RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] n.
		if err := p.sp(); err != nil {
			return searchKey{}, err
		}
		if p.peek() == '"' {
			if _, err := p.quoted(); err != nil {
				return searchKey{}, err
			}
			if err := p.sp(); err != nil {
				return searchKey{}, err
			}
			if _, err := p.atom(); err != nil {
				return searchKey{}, err
			}
			if err := p.sp(); err != nil {
				return searchKey{}, err
			}
		}
		n, err := p.number64()
		return searchKey{op: "MODSEQ", n: n}, err
	case "EMAILID", "THREADID":
		// RFC 8474 §6 (objectid.go).
		return parseObjectIDArg(p, a)
	case "UID":
		if err := p.sp(); err != nil {
			return searchKey{}, err
		}
		set, err := p.numSet()
		return searchKey{op: "UID", set: set}, err
	case "NOT":
		if err := p.sp(); err != nil {
			return searchKey{}, err
		}
		k, err := parseSearchKey(p, depth+1)
		return searchKey{op: "NOT", sub: []searchKey{k}}, err
	case "OR":
		if err := p.sp(); err != nil {
			return searchKey{}, err
		}
		k1, err := parseSearchKey(p, depth+1)
		if err != nil {
			return searchKey{}, err
		}
		if err := p.sp(); err != nil {
			return searchKey{}, err
		}
		k2, err := parseSearchKey(p, depth+1)
		return searchKey{op: "OR", sub: []searchKey{k1, k2}}, err
	}
	return searchKey{}, p.errorf("unknown search key %s", a)
}

// searchMsg is what a search key is evaluated against.
type searchMsg struct {
	seq, maxSeq, maxUID uint32
	mi                  *mailstore.MessageInfo
	recent              bool
	saved               bool // in the SEARCHRES result ("$")
	modseq              uint64
	load                func() []byte
	content             []byte
	header              *textproto.Header
	// stream, for a big message (bigmsg.go), opens it as a CRLF stream:
	// BODY and TEXT then search it streamed (streamSearch), and the header is
	// read alone (loadHeader).
	stream     func() (io.Reader, io.Closer, error)
	loadHeader func() []byte
	// bodyText and fullText are what BODY and TEXT search in, once
	// made (searchtext.go).
	bodyText, fullText *string
	// objectIDs returns the EMAILID and (with thread) THREADID, "" when
	// the message cannot be read (RFC 8474, objectid.go).
	objectIDs func(thread bool) (emailID, threadID string)
}

func (m *searchMsg) msg() []byte {
	if m.content == nil {
		m.content = m.load()
	}
	return m.content
}

// rfc822Size is RFC822.SIZE (RFC 9051 §6.4.4.1 LARGER/SMALLER): the size
// with CRLF line ends, as FETCH and STATUS SIZE count it, not the size of
// the file (LF ends).
func (m *searchMsg) rfc822Size() int64 {
	if m.mi.VSize >= 0 {
		return m.mi.VSize
	}
	if m.stream != nil {
		r, cl, err := m.stream()
		if err != nil {
			return m.mi.Size
		}
		defer cl.Close()
		n, _ := io.Copy(io.Discard, r)
		return n
	}
	return int64(len(m.msg()))
}

func (m *searchMsg) hdr() *textproto.Header {
	if m.header == nil {
		src := m.msg
		if m.loadHeader != nil {
			src = m.loadHeader
		}
		h, err := readHeaderLenient(bufio.NewReader(bytes.NewReader(src())))
		if err != nil {
			h = textproto.Header{}
		}
		m.header = &h
	}
	return m.header
}

func dayOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
}

var wordDecoder = mime.WordDecoder{}

// containsFold compares as dovecot's i;unicode-casemap, near enough
// (searchtext.go).
func containsFold(s, sub string) bool {
	return strings.Contains(searchFold(s), searchFold(sub))
}

func (k *searchKey) match(m *searchMsg) bool {
	switch k.op {
	case "ALL":
		return true
	case "AND":
		for i := range k.sub {
			if !k.sub[i].match(m) {
				return false
			}
		}
		return true
	case "NOT":
		return !k.sub[0].match(m)
	case "OR":
		return k.sub[0].match(m) || k.sub[1].match(m)
	case "SEQ":
		if isSearchRes(k.set) {
			return m.saved
		}
		return inSet(k.set, m.seq, m.maxSeq)
	case "UID":
		if isSearchRes(k.set) {
			return m.saved
		}
		return inSet(k.set, m.mi.UID, m.maxUID)
	case "FLAG":
		return m.mi.HasFlag(k.flag)
	case "NOTFLAG":
		return !m.mi.HasFlag(k.flag)
	case "RECENT":
		return m.recent
	case "NEW":
		return m.recent && !m.mi.HasFlag(mailstore.FlagSeen)
	case "OLD":
		return !m.recent
	case "MODSEQ":
		return m.modseq >= uint64(k.n)
	case "EMAILID":
		e, _ := m.objectIDs(false)
		return e != "" && e == k.value
	case "THREADID":
		_, t := m.objectIDs(true)
		return t != "" && t == k.value
	case "OLDER", "YOUNGER":
		return k.within(m.mi.InternalDate)
	case "LARGER":
		return m.rfc822Size() > k.n
	case "SMALLER":
		return m.rfc822Size() < k.n
	case "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE", "SAVEDATESUPPORTED":
		return matchSaveDate(k.op, k.date, m.mi)
	case "BEFORE":
		return dayOf(m.mi.InternalDate).Before(k.date)
	case "ON":
		return dayOf(m.mi.InternalDate).Equal(k.date)
	case "SINCE":
		return !dayOf(m.mi.InternalDate).Before(k.date)
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		mh := mail.Header{Header: message.Header{Header: *m.hdr()}}
		d, err := mh.Date()
		if err != nil {
			d = lenientSentDate(m.hdr().Get("Date"))
		}
		d = dayOf(d)
		switch k.op {
		case "SENTBEFORE":
			return d.Before(k.date)
		case "SENTON":
			return d.Equal(k.date)
		}
		return !d.Before(k.date)
	case "HEADER":
		h := m.hdr()
		addresses := isAddressField(k.field)
		for _, v := range h.Values(k.field) {
			if addresses {
				// Address fields are searched in their parsed form, as
				// dovecot does: "Name <local@domain>", comments and
				// folding gone ("<a (c)@ (c) b.org>" is found as a@b.org).
				v = searchableAddresses(v)
			}
			if dec, err := wordDecoder.DecodeHeader(v); err == nil {
				v = dec
			}
			if containsFold(v, k.value) {
				return true
			}
		}
		return false
	case "BODY":
		if m.stream != nil {
			return m.streamContains(k.value, true)
		}
		if m.bodyText == nil {
			t := searchBodyText(m.msg(), false)
			m.bodyText = &t
		}
		return strings.Contains(*m.bodyText, searchFold(k.value))
	case "TEXT":
		if m.stream != nil {
			return m.streamContains(k.value, false)
		}
		if m.fullText == nil {
			t := searchBodyText(m.msg(), true)
			m.fullText = &t
		}
		return strings.Contains(*m.fullText, searchFold(k.value))
	}
	return false
}

// inSet reports whether n is in set; '*' (0) stands for max.
func inSet(set imap.SeqSet, n, max uint32) bool {
	for _, r := range set {
		lo, hi := r.Start, r.Stop
		if lo == 0 {
			lo = max
		}
		if hi == 0 {
			hi = max
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

// RFC 9051 §6.4.4 SEARCH, with ESEARCH (RFC 4731) RETURN options.
func (c *conn) cmdSearch(tag string, p *parser, uid bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	var ret []string
	var partial partialRange
	var err error
	esearch, saveRes, update := false, false, false
	save := p.pos
	if a := strings.ToUpper(p.word("")); a == "RETURN" {
		esearch = true
		if err := p.sp(); err != nil {
			return err
		}
		if err := p.expect('('); err != nil {
			return err
		}
		for !p.take(')') {
			p.take(' ')
			o, err := p.atom()
			if err != nil {
				return err
			}
			o = strings.ToUpper(o)
			switch o {
			case "MIN", "MAX", "ALL", "COUNT":
				ret = append(ret, o)
			case "PARTIAL":
				// RFC 5267 §4.4 (partial.go).
				if partial, err = parsePartial(p); err != nil {
					return err
				}
				ret = append(ret, o)
			case "SAVE":
				saveRes = true
			case "UPDATE":
				update = true // RFC 5267 §4.3 (context.go)
			case "CONTEXT":
				// RFC 5267 §4.2: a hint a server may ignore; alone
				// it still means ALL (as dovecot has it).
			default:
				return errBad("unknown RETURN option %s", o)
			}
		}
		if len(ret) == 0 && !saveRes && !update {
			ret = []string{"ALL"}
		}
		if err := p.sp(); err != nil {
			return err
		}
		save = p.pos
	} else {
		p.pos = save
	}
	var charset string
	if a := strings.ToUpper(p.word("")); a == "CHARSET" {
		if err := p.sp(); err != nil {
			return err
		}
		if charset, err = p.astring(); err != nil {
			return err
		}
		if err := c.utf8Charset(charset); err != nil {
			return err
		}
		if err := p.sp(); err != nil {
			return err
		}
	} else {
		p.pos = save
	}
	keys, err := parseSearchKeys(p, 0)
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	// The whole command is read (its literals too) before the charset is
	// judged (sort.go), so a refused one leaves nothing unread.
	if err := searchCharset(keys, charset); err != nil {
		return err
	}
	prog := searchKey{op: "AND", sub: keys}
	if update {
		if err := c.checkUpdateTag(tag); err != nil {
			return err
		}
	}
	s := c.sel
	ctx, cancel := c.ctx()
	defer cancel()
	snap, err := s.snapshot(ctx)
	if err != nil {
		return c.storeErr("SEARCH", s.mb, err)
	}
	var hits, hitUIDs []uint32
	var hitModSeqs []uint64
	var maxModSeq uint64
	withModSeq := prog.usesModSeq()
	if withModSeq {
		c.enableCondstore()
	}
	for _, h := range c.evalSearch(snap, &prog, withModSeq) {
		maxModSeq = max(maxModSeq, h.modseq)
		hitModSeqs = append(hitModSeqs, h.modseq)
		hitUIDs = append(hitUIDs, h.mi.UID)
		if uid {
			hits = append(hits, h.mi.UID)
		} else {
			hits = append(hits, h.seq)
		}
	}
	if saveRes {
		// RFC 5182: "$" now means these messages; SAVE alone answers
		// nothing but the tagged OK.
		s.searchRes = hitUIDs
		// RFC 5182 §2.4: with MIN and/or MAX but neither ALL nor
		// COUNT, only those messages are saved.
		if len(hitUIDs) > 0 && !slices.Contains(ret, "ALL") && !slices.Contains(ret, "COUNT") &&
			(slices.Contains(ret, "MIN") || slices.Contains(ret, "MAX")) {
			var keep []uint32
			if slices.Contains(ret, "MIN") {
				keep = append(keep, hitUIDs[0])
			}
			if slices.Contains(ret, "MAX") && (len(keep) == 0 || hitUIDs[len(hitUIDs)-1] != keep[0]) {
				keep = append(keep, hitUIDs[len(hitUIDs)-1])
			}
			s.searchRes = keep
		}
		if len(ret) == 0 {
			return c.ok(tag, "", "SEARCH completed, result saved", uid)
		}
	}
	if esearch || c.rev2 {
		if len(ret) == 0 && !update {
			ret = []string{"ALL"}
		}
		c.w.raw(`* ESEARCH (TAG `).str(tag).raw(")")
		if uid {
			c.w.raw(" UID")
		}
		if len(hits) > 0 {
			// RFC 4731 §3.1: each result once, in dovecot's order
			// whatever the order (or repetition) of the options.
			for _, r := range []string{"MIN", "MAX", "ALL"} {
				if !slices.Contains(ret, r) {
					continue
				}
				switch r {
				case "MIN":
					c.w.raw(" MIN ").num(hits[0])
				case "MAX":
					c.w.raw(" MAX ").num(hits[len(hits)-1])
				case "ALL":
					var set imap.SeqSet
					set.AddNum(hits...)
					c.w.raw(" ALL ").raw(set.String())
				}
			}
		}
		if slices.Contains(ret, "PARTIAL") {
			partial.write(c.w, hits, false)
		}
		if slices.Contains(ret, "COUNT") {
			c.w.raw(" COUNT ").num(uint32(len(hits)))
		}
		if withModSeq && len(hits) > 0 {
			c.w.raw(" MODSEQ ").num64(int64(esearchModSeq(ret, hitModSeqs, maxModSeq)))
		}
		c.w.crlf()
	} else {
		c.w.raw("* SEARCH")
		for _, h := range hits {
			c.w.sp().num(h)
		}
		if withModSeq && len(hits) > 0 {
			c.w.raw(" (MODSEQ ").num64(int64(maxModSeq)).raw(")")
		}
		c.w.crlf()
	}
	if update {
		if !c.canUpdate(uid, ret) {
			return c.ok(tag, imap.ResponseCode(`NOUPDATE "`+tag+`"`), "SEARCH completed, no updates", uid)
		}
		s.updates = append(s.updates, &searchUpdate{tag: tag, prog: prog, uids: hitUIDs, snap: snap, viewLen: len(s.uids)})
	}
	return c.ok(tag, "", "SEARCH completed", uid)
}

// matchesAll tells whether k is ALL, or an AND of ALLs.
func (k *searchKey) matchesAll() bool {
	switch k.op {
	case "ALL":
		return true
	case "AND":
		for i := range k.sub {
			if !k.sub[i].matchesAll() {
				return false
			}
		}
		return len(k.sub) > 0
	}
	return false
}

// searchHit is a message a search program matched.
type searchHit struct {
	seq    uint32
	modseq uint64 // with withModSeq only
	mi     *mailstore.MessageInfo
}

// evalSearch runs prog over the selected folder's view (snap is the
// session's snapshot) and returns the matches in sequence order.
func (c *conn) evalSearch(snap *mailstore.Snapshot, prog *searchKey, withModSeq bool) []searchHit {
	s := c.sel
	saved := map[uint32]bool{}
	for _, u := range s.searchRes {
		saved[u] = true
	}
	var maxUID uint32
	if len(s.uids) > 0 {
		maxUID = s.uids[len(s.uids)-1]
	}
	if prog.matchesAll() && !withModSeq {
		// ALL (SORT and THREAD of a whole folder): every message of the
		// view, without a searchMsg each.
		hits := make([]searchHit, 0, len(s.uids))
		j := 0
		for i, u := range s.uids {
			for j < len(snap.Messages) && snap.Messages[j].UID < u {
				j++
			}
			if j < len(snap.Messages) && snap.Messages[j].UID == u {
				hits = append(hits, searchHit{seq: uint32(i + 1), mi: &snap.Messages[j]})
			}
		}
		return hits
	}
	var hits []searchHit
	j := 0 // both s.uids and snap.Messages ascend by UID
	for i, u := range s.uids {
		for j < len(snap.Messages) && snap.Messages[j].UID < u {
			j++
		}
		if j == len(snap.Messages) || snap.Messages[j].UID != u {
			continue // expunged under the session's view
		}
		mi := &snap.Messages[j] // snapshots are immutable
		sm := &searchMsg{seq: uint32(i + 1), maxSeq: uint32(len(s.uids)), maxUID: maxUID, mi: mi, recent: s.recent[u], saved: saved[u]}
		if withModSeq {
			sm.modseq = s.ms.modseq(u)
		}
		sm.load = func() []byte {
			b, err := c.readMessage(s.folder, *mi, nil)
			if err != nil {
				c.log.Warn("imap: search read", "uid", mi.UID, "err", err)
				return []byte{}
			}
			return b
		}
		sm.objectIDs = func(thread bool) (string, string) {
			ctx, cancel := c.ctx()
			defer cancel()
			e, t, err := c.objectIDs(ctx, s.folder, snap, mi, thread)
			if err != nil {
				c.log.Warn("imap: search object ids", "uid", mi.UID, "err", err)
			}
			return e, t
		}
		if c.isBig(mi) {
			sm.stream = func() (io.Reader, io.Closer, error) { return c.openStream(s.folder, mi, false) }
			sm.loadHeader = func() []byte {
				h, err := c.readContent(s.folder, *mi, true, nil)
				if err != nil {
					return []byte{}
				}
				return h
			}
		}
		if prog.match(sm) {
			hits = append(hits, searchHit{seq: uint32(i + 1), modseq: sm.modseq, mi: mi})
		}
	}
	return hits
}

// isAddressField tells the address header fields SEARCH parses.
func isAddressField(name string) bool {
	switch strings.ToLower(name) {
	case "from", "to", "cc", "bcc", "sender", "reply-to":
		return true
	}
	return false
}

// searchableAddresses renders an address list as "Name <local@domain>,
// ..." for SEARCH.
func searchableAddresses(v string) string {
	var b strings.Builder
	for _, a := range parseAddressList(v) {
		if a.end {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if a.start {
			b.WriteString(a.group + ":")
			continue
		}
		if a.name != "" {
			b.WriteString(a.name + " ")
		}
		b.WriteString("<" + a.mailbox + "@" + a.host + ">")
	}
	return b.String()
}

// streamContains searches the message stream for sub where BODY
// (bodyOnly) or TEXT look (searchtext.go streamSearch).
func (m *searchMsg) streamContains(sub string, bodyOnly bool) bool {
	r, cl, err := m.stream()
	if err != nil {
		return false
	}
	defer cl.Close()
	return streamSearch(r, sub, !bodyOnly)
}

// lenientSentDate reads a Date field net/mail refuses as dovecot does for
// SENTBEFORE/SENTON/SENTSINCE: a misspelt day of the week ("Wen, 31 May
// 2006 ...") is skipped; a date that still does not parse counts as the
// zero time, before every date.
func lenientSentDate(v string) time.Time {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ','); i == 3 && isASCIILetters(v[:3]) {
		if d, err := netmail.ParseDate(strings.TrimSpace(v[i+1:])); err == nil {
			return d
		}
	}
	return time.Time{}
}

func isASCIILetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
