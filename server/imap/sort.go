package imap

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"

	"mailmig/mailstore"
)

// SORT (RFC 5256 §3), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267 §3):
//
//	sort = ["UID" SP] "SORT" [SP "RETURN" SP "(" ... ")"] SP
//	       "(" sort-criterion *(SP sort-criterion) ")" SP charset 1*(SP search-key)
//
// Keys: ARRIVAL (internal date), CC, FROM, TO (the addr-mailbox of the
// first address), DATE (sent date, §2.2), SIZE (RFC822.SIZE), SUBJECT (base
// subject, §2.1), DISPLAYFROM, DISPLAYTO (display name, else addr-spec,
// RFC 5957 §3); REVERSE before a key reverses it. Strings compare by
// i;unicode-casemap; messages that compare equal keep sequence order.

type sortCriterion struct {
	key     string
	reverse bool
}

// parseSortCriteria reads "(" sort-criterion *(SP sort-criterion) ")".
func parseSortCriteria(p *parser) ([]sortCriterion, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var out []sortCriterion
	reverse := false
	for {
		a, err := p.atom()
		if err != nil {
			return nil, err
		}
		a = strings.ToUpper(a)
		switch a {
		case "REVERSE":
			if reverse {
				return nil, p.errorf("REVERSE REVERSE")
			}
			reverse = true
		case "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO":
			out = append(out, sortCriterion{key: a, reverse: reverse})
			reverse = false
		default:
			return nil, p.errorf("unknown sort criterion %s", a)
		}
		if p.take(')') {
			break
		}
		if err := p.sp(); err != nil {
			return nil, err
		}
	}
	if reverse {
		return nil, p.errorf("REVERSE without a sort key")
	}
	return out, nil
}

// searchCharset checks the search strings of keys against charset cs
// (SEARCH CHARSET, SORT's and THREAD's charset; "" is UTF-8) and turns
// them into UTF-8, as dovecot: a charset go-message cannot decode is NO
// [BADCHARSET] (dovecot lists none), strings that are not UTF-8 (or
// 8-bit ones in US-ASCII) are BAD. It runs once the whole command is
// read, so a refused charset leaves no literal unread.
func searchCharset(keys []searchKey, cs string) error {
	switch strings.ToLower(cs) {
	case "", "utf-8":
		cs = ""
	case "us-ascii":
		if !keysAll(keys, func(v string) bool { return strings.IndexFunc(v, func(r rune) bool { return r >= 0x80 }) < 0 }) {
			return errBad("search string is not US-ASCII")
		}
		cs = ""
	default:
		if _, err := charsetReader(cs, strings.NewReader("")); err != nil {
			return errNo(imap.ResponseCodeBadCharset, "unknown charset %s", cs)
		}
	}
	if err := convertKeys(keys, cs); err != nil {
		return err
	}
	if !keysAll(keys, utf8.ValidString) {
		return errBad("search string is not valid %s", cmp.Or(cs, "UTF-8"))
	}
	return nil
}

// keysAll reports whether ok holds for every search string of keys.
func keysAll(keys []searchKey, ok func(string) bool) bool {
	for i := range keys {
		if keys[i].value != "" && !ok(keys[i].value) || !keysAll(keys[i].sub, ok) {
			return false
		}
	}
	return true
}

// convertKeys turns the strings of search keys from charset cs into
// UTF-8 ("" is UTF-8 already).
func convertKeys(keys []searchKey, cs string) error {
	if cs == "" {
		return nil
	}
	for i := range keys {
		k := &keys[i]
		if k.value != "" {
			r, err := charsetReader(cs, strings.NewReader(k.value))
			if err != nil {
				return errNo(imap.ResponseCodeBadCharset, "unknown charset %s", cs)
			}
			b, err := io.ReadAll(r)
			// A decoder puts U+FFFD for what is not in its charset;
			// dovecot (iconv) fails the command.
			if err != nil || bytes.ContainsRune(b, utf8.RuneError) && !strings.Contains(k.value, "\uFFFD") {
				return errBad("search string is not valid %s", cs)
			}
			k.value = string(b)
		}
		if err := convertKeys(k.sub, cs); err != nil {
			return err
		}
	}
	return nil
}

// esortReturn is what ESORT's RETURN asked for.
type esortReturn struct {
	ret     []string // MIN, MAX, ALL, COUNT, PARTIAL in their order
	partial partialRange
	update  bool // RFC 5267 §4.3 UPDATE (context.go)
	esort   bool // RETURN was there
}

// parseEsortReturn reads ESORT's "RETURN (...)" (RFC 5267 §3.2, the
// options of RFC 4731, and CONTEXT=SORT's CONTEXT, PARTIAL and UPDATE of
// §4), if there.
func parseEsortReturn(p *parser) (esortReturn, error) {
	var r esortReturn
	save := p.pos
	if strings.ToUpper(p.word("")) != "RETURN" {
		p.pos = save
		return r, nil
	}
	r.esort = true
	if err := p.sp(); err != nil {
		return r, err
	}
	if err := p.expect('('); err != nil {
		return r, err
	}
	for !p.take(')') {
		p.take(' ')
		o, err := p.atom()
		if err != nil {
			return r, err
		}
		switch o = strings.ToUpper(o); o {
		case "MIN", "MAX", "ALL", "COUNT":
			r.ret = append(r.ret, o)
		case "PARTIAL":
			// RFC 5267 §4.4 (partial.go).
			if r.partial, err = parsePartial(p); err != nil {
				return r, err
			}
			r.ret = append(r.ret, o)
		case "UPDATE":
			r.update = true
		case "CONTEXT":
			// §4.2: a hint a server may ignore; alone it still means
			// ALL (as dovecot has it).
		default:
			return r, errBad("unknown RETURN option %s", o)
		}
	}
	// "RETURN ()" is ALL (§3.3); UPDATE alone asks for no result data,
	// as with SEARCH (dovecot answers the same).
	if len(r.ret) == 0 && !r.update {
		r.ret = []string{"ALL"}
	}
	return r, p.sp()
}

// RFC 5256 §3 SORT, RFC 5957 SORT=DISPLAY, RFC 5267 §3 ESORT.
func (c *conn) cmdSort(tag string, p *parser, uid bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	start, startOff := p.pos, p.off
	er, err := parseEsortReturn(p)
	if err != nil {
		return err
	}
	ret, partial, esort := er.ret, er.partial, er.esort
	crit, err := parseSortCriteria(p)
	if err != nil {
		return err
	}
	prog, err := c.charsetSearchProgram(p)
	if err != nil {
		return err
	}
	if er.update {
		if err := c.checkUpdateTag(tag); err != nil {
			return err
		}
	}
	s := c.sel
	ctx, cancel := c.ctx()
	defer cancel()
	snap, err := s.snapshot(ctx)
	if err != nil {
		return c.storeErr("SORT", s.mb, err)
	}
	withModSeq := prog.usesModSeq()
	if withModSeq {
		c.enableCondstore()
	}
	// A plain SORT's answer may be kept (resultcache.go); ESORT's names
	// the tag.
	fc := sortCacheFor(s.folder, snap.UIDValidity)
	// After a literal p.line is the line that followed it: the command
	// is then not one line (and not cached).
	var rk resultKey
	cacheable := !esort && p.off == startOff
	if cacheable {
		rk, cacheable = c.resultKeyFor(snap, &prog, fmt.Sprintf("SORT %v %s", uid, p.line[start:]))
	}
	if cacheable {
		if out, ok := fc.cachedAnswer(rk); ok {
			c.w.raw(out).crlf()
			return c.ok(tag, "", "SORT completed", uid)
		}
	}
	hits := c.evalSearch(snap, &prog, withModSeq)
	cached := fc.len()
	if err := c.sortHits(ctx, snap, hits, crit); err != nil {
		return c.storeErr("SORT", s.mb, err)
	}
	var maxModSeq uint64
	nums := make([]uint32, len(hits))
	for i, h := range hits {
		maxModSeq = max(maxModSeq, h.modseq)
		nums[i] = h.seq
		if uid {
			nums[i] = h.mi.UID
		}
	}
	if esort {
		c.w.raw(`* ESEARCH (TAG `).str(tag).raw(")")
		if uid {
			c.w.raw(" UID")
		}
		if len(nums) > 0 {
			for _, r := range ret {
				switch r {
				case "MIN":
					c.w.raw(" MIN ").num(nums[0])
				case "MAX":
					c.w.raw(" MAX ").num(nums[len(nums)-1])
				case "ALL":
					c.w.raw(" ALL ").raw(orderedSet(nums))
				}
			}
		}
		if slices.Contains(ret, "PARTIAL") {
			partial.write(c.w, nums, true)
		}
		if slices.Contains(ret, "COUNT") {
			c.w.raw(" COUNT ").num(uint32(len(nums)))
		}
		if withModSeq && len(hits) > 0 {
			ms := make([]uint64, len(hits))
			for i, h := range hits {
				ms[i] = h.modseq
			}
			c.w.raw(" MODSEQ ").num64(int64(esearchModSeq(ret, ms, maxModSeq)))
		}
		c.w.crlf()
	} else {
		var b strings.Builder
		b.Grow(len(nums) * 7)
		b.WriteString("* SORT")
		for _, n := range nums {
			b.WriteByte(' ')
			b.WriteString(uitoa(n))
		}
		if withModSeq && len(hits) > 0 {
			fmt.Fprintf(&b, " (MODSEQ %d)", maxModSeq)
		}
		if cacheable {
			fc.keepAnswer(rk, b.String())
		}
		c.w.raw(b.String()).crlf()
	}
	releaseLargeSort(len(hits), fc.len()-cached)
	if er.update {
		// CONTEXT=SORT (RFC 5267 §4.3, context.go).
		if !c.canUpdateSort(uid) {
			return c.ok(tag, imap.ResponseCode(`NOUPDATE "`+tag+`"`), "SORT completed, no updates", uid)
		}
		s.updates = append(s.updates, &searchUpdate{tag: tag, prog: prog, uids: slices.Sorted(slices.Values(nums)), order: nums, sort: crit, snap: snap, viewLen: len(s.uids)})
	}
	return c.ok(tag, "", "SORT completed", uid)
}

// orderedSet writes numbers in the given order as a sequence-set,
// joining ascending runs ("5,3,1:2"), as RFC 5267 §3.2 allows for ESORT.
func orderedSet(nums []uint32) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(uitoa(nums[i]))
		if j > i {
			b.WriteByte(':')
			b.WriteString(uitoa(nums[j]))
		}
		i = j + 1
	}
	return b.String()
}

func uitoa(n uint32) string {
	var buf [10]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(buf[i:])
}

// sortHits orders hits by crit (stable: ties keep sequence order).
func (c *conn) sortHits(ctx context.Context, snap *mailstore.Snapshot, hits []searchHit, crit []sortCriterion) error {
	n := len(hits)
	// Per criterion, a key per hit: numbers or strings.
	type column struct {
		nums    []int64
		strs    []string
		reverse bool
	}
	cols := make([]column, len(crit))
	var headers []textproto.Header
	for ci, cr := range crit {
		col := column{reverse: cr.reverse}
		switch cr.key {
		case "ARRIVAL":
			col.nums = make([]int64, n)
			for i, h := range hits {
				col.nums[i] = h.mi.InternalDate.Unix()
			}
		case "SIZE":
			col.nums = make([]int64, n)
			for i, h := range hits {
				size, err := c.vsize(c.sel.folder, h.mi)
				if err != nil {
					return err
				}
				col.nums[i] = size
			}
		case "DATE":
			fc := sortCacheFor(c.sel.folder, snap.UIDValidity)
			var err error
			if col.nums, err = fc.dates(ctx, c.sel.folder, hitMessages(hits), len(snap.Messages)); err != nil {
				return err
			}
		default:
			if headers == nil {
				headers = make([]textproto.Header, n)
				for i, h := range hits {
					if i%256 == 0 {
						if err := ctx.Err(); err != nil {
							return err
						}
					}
					headers[i], _ = readHeaderOf(c.sel.folder, *h.mi)
				}
			}
			col.strs = make([]string, n)
			for i := range hits {
				col.strs[i] = stringSortKey(cr.key, headers[i])
			}
		}
		cols[ci] = col
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		for _, col := range cols {
			var r int
			if col.nums != nil {
				r = cmp.Compare(col.nums[a], col.nums[b])
			} else {
				r = strings.Compare(col.strs[a], col.strs[b])
			}
			if col.reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		// Equal: sequence order (RFC 5256 §3), whatever REVERSE says.
		return cmp.Compare(hits[a].seq, hits[b].seq)
	})
	sorted := make([]searchHit, n)
	for i, j := range idx {
		sorted[i] = hits[j]
	}
	copy(hits, sorted)
	return nil
}

// threadInfos returns the cached sort/thread keys of hits.
func (c *conn) threadInfos(ctx context.Context, snap *mailstore.Snapshot, hits []searchHit) ([]threadInfo, error) {
	fc := sortCacheFor(c.sel.folder, snap.UIDValidity)
	return fc.infos(ctx, c.sel.folder, hitMessages(hits), len(snap.Messages))
}

// hitMessages are the messages of hits, in their order.
func hitMessages(hits []searchHit) []*mailstore.MessageInfo {
	msgs := make([]*mailstore.MessageInfo, len(hits))
	for i, h := range hits {
		msgs[i] = h.mi
	}
	return msgs
}

// stringSortKey is a string sort key of a header (RFC 5256 §3, RFC 5957).
func stringSortKey(key string, h textproto.Header) string {
	switch key {
	case "SUBJECT":
		b, _ := baseSubject(h.Get("Subject"))
		return b
	case "FROM", "TO", "CC":
		field := map[string]string{"FROM": "From", "TO": "To", "CC": "Cc"}[key]
		if a, ok := firstAddress(h.Get(field)); ok {
			return foldCase(a.mailbox)
		}
	case "DISPLAYFROM", "DISPLAYTO":
		field := "From"
		if key == "DISPLAYTO" {
			field = "To"
		}
		if a, ok := firstAddress(h.Get(field)); ok {
			name := a.name
			if d, err := headerDecoder.DecodeHeader(name); err == nil {
				name = d
			}
			if name = strings.TrimSpace(collapseSpace(name)); name != "" {
				return foldCase(name)
			}
			if a.host == "" {
				return foldCase(a.mailbox)
			}
			return foldCase(a.mailbox + "@" + a.host)
		}
	}
	return ""
}

// firstAddress is the first address of a list as ENVELOPE has it: a
// group's start counts, with the group's name as its mailbox (dovecot
// sorts "group: a@b;" as "group"), and "<>" is MISSING_MAILBOX.
func firstAddress(v string) (envAddr, bool) {
	if v == "" {
		return envAddr{}, false
	}
	for _, a := range parseAddressList(v) {
		if a.end {
			continue
		}
		if a.group != "" {
			return envAddr{mailbox: a.group}, true
		}
		return a, true
	}
	return envAddr{}, false
}

// charsetSearchProgram reads what SORT and THREAD share after their own
// arguments (RFC 5256 §3): SP charset SP search-key..., to the end of the
// command, as one AND program with the keys converted from the charset.
func (c *conn) charsetSearchProgram(p *parser) (searchKey, error) {
	if err := p.sp(); err != nil {
		return searchKey{}, err
	}
	cs, err := p.astring()
	if err != nil {
		return searchKey{}, err
	}
	// RFC 6855 §3 (utf8accept.go): with UTF8=ACCEPT only UTF-8 (and
	// US-ASCII, a subset).
	if !strings.EqualFold(cs, "UTF-8") && !strings.EqualFold(cs, "US-ASCII") {
		if err := c.utf8Charset(cs); err != nil {
			return searchKey{}, err
		}
	}
	if err := p.sp(); err != nil {
		return searchKey{}, err
	}
	keys, err := parseSearchKeys(p, 0)
	if err != nil {
		return searchKey{}, err
	}
	if err := p.end(); err != nil {
		return searchKey{}, err
	}
	// Judged once the whole command is read.
	if err := searchCharset(keys, cs); err != nil {
		return searchKey{}, err
	}
	return searchKey{op: "AND", sub: keys}, nil
}
