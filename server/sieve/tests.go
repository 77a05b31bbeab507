package sieve

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

type testKind int

const (
	tAddress testKind = iota
	tHeader
	tEnvelope
	tExists
	tSize
	tAllof
	tAnyof
	tNot
	tTrue
	tFalse
	tBody
	tDate
	tCurrentdate
	tHasflag
	tMailboxexists
	tStringTest
	tIhave
	tDuplicate
	tSpamtest
	tVirustest
)

// test is a compiled test.
type test struct {
	kind testKind
	pos  pos
	subs []*test
	m    *matcher
	// names: header names, envelope parts, mailboxes, string sources,
	// hasflag variables.
	names []*sval
	keys  []*sval
	part  string // address part ("all", "localpart", ...)
	index int
	last  bool

	over bool
	size int64

	transform string   // body: "raw", "content", "text"
	ctypes    []string // body :content types
	zone      *sval    // date/currentdate :zone
	origZone  bool
	datePart  *sval

	ihaveOK   bool
	ihaveExts []string

	percent bool // spamtest :percent

	dupHandle, dupHeader, dupID *sval
	dupSeconds                  int64
	dupSecondsGiven             bool
}

// matcher is a comparator and match type (RFC 5228 §2.7).
type matcher struct {
	typ string // is contains matches regex value count
	rel string // relational operator for value/count
	cmp string // comparator
	re  []*regexp.Regexp
}

var relOps = map[string]bool{"gt": true, "ge": true, "lt": true, "le": true, "eq": true, "ne": true}

var cmpExt = map[string]string{
	"i;octet": "", "i;ascii-casemap": "",
	"i;ascii-numeric": "comparator-i;ascii-numeric", "i;unicode-casemap": "comparator-i;unicode-casemap",
}

func (c *compiler) matcher(a *args, what string) (*matcher, error) {
	m := &matcher{typ: "is", cmp: "i;ascii-casemap"}
	if (a.n.name == "spamtest" || a.n.name == "virustest") && !a.has("contains") && !a.has("matches") && !a.has("regex") {
		// RFC 5235 §3.2; substring matches keep the usual default, as in
		// pigeonhole.
		m.cmp = "i;ascii-numeric"
	}
	for _, t := range []string{"is", "contains", "matches", "regex", "value", "count"} {
		if a.has(t) {
			m.typ = t
		}
	}
	if m.typ == "value" || m.typ == "count" {
		p := a.param(m.typ)
		if len(p.strs) != 1 || !relOps[lower(p.strs[0])] {
			return nil, cerr(p.pos, "invalid relational match type '%s'", strings.Join(p.strs, " "))
		}
		m.rel = lower(p.strs[0])
	}
	if a.has("comparator") {
		p := a.param("comparator")
		if len(p.strs) != 1 {
			return nil, cerr(p.pos, "the :comparator tag requires one string parameter")
		}
		name := lower(p.strs[0])
		ext, ok := cmpExt[name]
		if !ok || (ext != "" && !c.has(ext)) {
			return nil, cerr(p.pos, "unknown comparator '%s'", p.strs[0])
		}
		m.cmp = name
	}
	if m.cmp == "i;ascii-numeric" && (m.typ == "contains" || m.typ == "matches" || m.typ == "regex") {
		return nil, cerr(a.tagPos(m.typ), "the specified :%s match type cannot be used with the i;ascii-numeric comparator", m.typ)
	}
	return m, nil
}

// keys compiles the key list at positional i; constant regexes are
// compiled (and refused) now, as sievec does.
func (c *compiler) keys(a *args, i int, m *matcher, what string) ([]*sval, error) {
	ks, err := c.posList(a, i, what)
	if err != nil {
		return nil, err
	}
	if m.typ == "regex" {
		m.re = make([]*regexp.Regexp, len(ks))
		for k, key := range ks {
			if s, ok := key.constant(); ok {
				re, err := compileRegex(s, m.cmp)
				if err != nil {
					return nil, cerr(a.pos[i].pos, "invalid regular expression '%s' for regex match: %s", s, err.Error())
				}
				m.re[k] = re
			}
		}
	}
	return ks, nil
}

func compileRegex(s, cmp string) (*regexp.Regexp, error) {
	p := s
	if cmp != "i;octet" {
		p = "(?i)" + p
	}
	re, err := regexp.Compile(p)
	if err != nil {
		msg := err.Error()
		if e, ok := err.(*syntax.Error); ok {
			msg = string(e.Code)
		}
		return nil, &ScriptError{Msg: msg}
	}
	return re, nil
}

var testExt = map[string]string{
	"envelope": "envelope", "body": "body", "date": "date", "currentdate": "date",
	"hasflag": "imap4flags", "mailboxexists": "mailbox", "string": "variables",
	"duplicate": "duplicate", "spamtest": "spamtest", "virustest": "virustest", "ihave": "ihave",
}

func (c *compiler) test(n *node) (*test, error) {
	if ext, ok := testExt[n.name]; ok && !c.has(ext) {
		return nil, cerr(n.pos, "unknown test '%s' (only reported once at first occurrence)", n.name)
	}
	t := &test{pos: n.pos}
	none := map[string]tagSpec{}
	switch n.name {
	case "allof", "anyof":
		if len(n.args) > 0 || !n.testList {
			return nil, cerr(n.pos, "the %s test requires a test list", n.name)
		}
		t.kind = tAllof
		if n.name == "anyof" {
			t.kind = tAnyof
		}
		for _, s := range n.tests {
			st, err := c.test(s)
			if err != nil {
				return nil, err
			}
			t.subs = append(t.subs, st)
		}
		return t, nil
	case "not":
		if len(n.args) > 0 || len(n.tests) != 1 || n.testList {
			return nil, cerr(n.pos, "the not test requires one test argument")
		}
		t.kind = tNot
		st, err := c.test(n.tests[0])
		if err != nil {
			return nil, err
		}
		t.subs = []*test{st}
		return t, nil
	}
	if len(n.tests) > 0 {
		return nil, cerr(n.pos, "the %s test accepts no sub-tests", n.name)
	}
	switch n.name {
	case "true", "false":
		if _, err := c.sortArgs(n, "test", none, 0, 0); err != nil {
			return nil, err
		}
		t.kind = tTrue
		if n.name == "false" {
			t.kind = tFalse
		}
	case "header", "address", "envelope":
		a, err := c.sortArgs(n, "test", headerSpecs[n.name], 2, 2)
		if err != nil {
			return nil, err
		}
		t.kind = map[string]testKind{"header": tHeader, "address": tAddress, "envelope": tEnvelope}[n.name]
		if err := c.index(t, a); err != nil {
			return nil, err
		}
		t.part = "all"
		for _, p := range []string{"localpart", "domain", "user", "detail"} {
			if a.has(p) {
				t.part = p
			}
		}
		if t.m, err = c.matcher(a, "test"); err != nil {
			return nil, err
		}
		if t.names, err = c.posList(a, 0, "test"); err != nil {
			return nil, err
		}
		for k, nm := range t.names {
			s, ok := nm.constant()
			if !ok {
				continue
			}
			if n.name == "envelope" {
				if l := lower(s); l != "from" && l != "to" && l != "auth" {
					return nil, cerr(a.pos[0].pos, "envelope test: specified envelope part '%s' is not supported", s)
				}
				t.names[k] = &sval{lit: lower(s)}
			} else if !fieldNameRE.MatchString(s) {
				return nil, cerr(a.pos[0].pos, "specified header field name '%s' is invalid", s)
			}
		}
		if t.keys, err = c.keys(a, 1, t.m, "test"); err != nil {
			return nil, err
		}
	case "exists":
		a, err := c.sortArgs(n, "test", none, 1, 1)
		if err != nil {
			return nil, err
		}
		t.kind = tExists
		if t.names, err = c.posList(a, 0, "test"); err != nil {
			return nil, err
		}
	case "size":
		a, err := c.sortArgs(n, "test", map[string]tagSpec{"over": {aTag, "", "size"}, "under": {aTag, "", "size"}}, 1, 1)
		if err != nil {
			return nil, err
		}
		if !a.has("over") && !a.has("under") {
			return nil, cerr(n.pos, "the size test requires either the :under or the :over tag to be specified")
		}
		if a.pos[0].kind != aNum {
			return nil, cerr(a.pos[0].pos, "the size test expects a number as argument, but %s was found", a.pos[0].describe())
		}
		t.kind, t.over, t.size = tSize, a.has("over"), a.pos[0].num
	case "body":
		spec := mergeTags(matchTags, map[string]tagSpec{"raw": {aTag, "", "transform"},
			"content": {aStr, "", "transform"}, "text": {aTag, "", "transform"}})
		a, err := c.sortArgs(n, "test", spec, 1, 1)
		if err != nil {
			return nil, err
		}
		t.kind, t.transform = tBody, "text"
		if a.has("raw") {
			t.transform = "raw"
		}
		if a.has("content") {
			t.transform = "content"
			for _, s := range a.param("content").strs {
				t.ctypes = append(t.ctypes, lower(s))
			}
		}
		if t.m, err = c.matcher(a, "test"); err != nil {
			return nil, err
		}
		if t.keys, err = c.keys(a, 0, t.m, "test"); err != nil {
			return nil, err
		}
	case "date", "currentdate":
		spec := mergeTags(matchTags, map[string]tagSpec{"zone": {aStr, "", "zone"}, "originalzone": {aTag, "", "zone"}})
		np := 2
		if n.name == "date" {
			spec = mergeTags(spec, indexTags)
			np = 3
		} else {
			delete(spec, "originalzone")
		}
		a, err := c.sortArgs(n, "test", spec, np, np)
		if err != nil {
			return nil, err
		}
		t.kind = tCurrentdate
		off := 0
		if n.name == "date" {
			t.kind, off = tDate, 1
			if err := c.index(t, a); err != nil {
				return nil, err
			}
			if t.names, err = c.posList(a, 0, "test"); err != nil {
				return nil, err
			}
		}
		if a.has("zone") {
			p := a.param("zone")
			if len(p.strs) != 1 {
				return nil, cerr(p.pos, "the :zone tag requires one string parameter")
			}
			t.zone = c.sval(p.strs[0])
			if s, ok := t.zone.constant(); ok && !validZone(s) {
				return nil, cerr(p.pos, "specified :zone argument '%s' is not a valid timezone", s)
			}
		}
		t.origZone = a.has("originalzone")
		if t.m, err = c.matcher(a, "test"); err != nil {
			return nil, err
		}
		if t.datePart, err = c.posString(a, off, "test"); err != nil {
			return nil, err
		}
		if s, ok := t.datePart.constant(); ok {
			if !dateParts[lower(s)] {
				return nil, cerr(a.pos[off].pos, "specified date part `%s' is not known", s)
			}
			t.datePart = &sval{lit: lower(s)}
		}
		if t.keys, err = c.keys(a, off+1, t.m, "test"); err != nil {
			return nil, err
		}
	case "hasflag", "string":
		a, err := c.sortArgs(n, "test", matchTags, 1, 2)
		if err != nil {
			return nil, err
		}
		t.kind = tHasflag
		if n.name == "string" {
			t.kind = tStringTest
			if len(a.pos) != 2 {
				return nil, cerr(n.pos, "the string test requires 2 positional argument(s), but %d is/are specified.", len(a.pos))
			}
		}
		if t.m, err = c.matcher(a, "test"); err != nil {
			return nil, err
		}
		if len(a.pos) == 2 {
			if t.kind == tHasflag && !c.has("variables") {
				return nil, cerr(n.pos, "the hasflag test requires 1 positional argument(s), but 2 is/are specified.")
			}
			if t.names, err = c.posList(a, 0, "test"); err != nil {
				return nil, err
			}
			if t.kind == tHasflag {
				for k, v := range t.names {
					nm, _ := v.constant()
					if !validVarName(nm, true) {
						return nil, cerr(a.pos[0].pos, "invalid variable name '%s'.", nm)
					}
					t.names[k] = &sval{lit: lower(nm)}
				}
			}
		}
		if t.keys, err = c.keys(a, len(a.pos)-1, t.m, "test"); err != nil {
			return nil, err
		}
	case "mailboxexists":
		a, err := c.sortArgs(n, "test", none, 1, 1)
		if err != nil {
			return nil, err
		}
		t.kind = tMailboxexists
		if t.names, err = c.posList(a, 0, "test"); err != nil {
			return nil, err
		}
	case "ihave":
		a, err := c.sortArgs(n, "test", none, 1, 1)
		if err != nil {
			return nil, err
		}
		if a.pos[0].kind != aStr {
			return nil, cerr(a.pos[0].pos, "the ihave test expects a string list of capabilities")
		}
		t.kind, t.ihaveOK = tIhave, true
		for _, e := range a.pos[0].strs {
			t.ihaveExts = append(t.ihaveExts, e)
			if !supported(e) {
				t.ihaveOK = false
			}
		}
	case "duplicate":
		spec := map[string]tagSpec{"handle": {aStr, "", ""}, "header": {aStr, "", "id"},
			"uniqueid": {aStr, "", "id"}, "seconds": {aNum, "", ""}, "last": {aTag, "", ""}}
		a, err := c.sortArgs(n, "test", spec, 0, 0)
		if err != nil {
			return nil, err
		}
		t.kind = tDuplicate
		one := func(tag string) (*sval, error) {
			if !a.has(tag) {
				return nil, nil
			}
			p := a.param(tag)
			if len(p.strs) != 1 {
				return nil, cerr(p.pos, "the :%s tag for the duplicate test requires a string parameter", tag)
			}
			return c.sval(p.strs[0]), nil
		}
		if t.dupHandle, err = one("handle"); err != nil {
			return nil, err
		}
		if t.dupHeader, err = one("header"); err != nil {
			return nil, err
		}
		if t.dupID, err = one("uniqueid"); err != nil {
			return nil, err
		}
		if a.has("seconds") {
			t.dupSeconds, t.dupSecondsGiven = a.param("seconds").num, true
		}
		t.last = a.has("last")
	case "spamtest", "virustest":
		spec := mergeTags(matchTags)
		if n.name == "spamtest" && c.has("spamtestplus") {
			spec["percent"] = tagSpec{aTag, "", ""}
		}
		a, err := c.sortArgs(n, "test", spec, 1, 1)
		if err != nil {
			return nil, err
		}
		t.kind = tSpamtest
		if n.name == "virustest" {
			t.kind = tVirustest
		}
		t.percent = a.has("percent")
		if t.m, err = c.matcher(a, "test"); err != nil {
			return nil, err
		}
		if t.keys, err = c.keys(a, 0, t.m, "test"); err != nil {
			return nil, err
		}
	default:
		return nil, cerr(n.pos, "unknown test '%s' (only reported once at first occurrence)", n.name)
	}
	return t, nil
}

func (c *compiler) index(t *test, a *args) error {
	if a.has("last") && !a.has("index") {
		return cerr(a.tagPos("last"), "the :last tag for the %s test cannot be specified without the :index tag", a.n.name)
	}
	if a.has("index") {
		t.index = int(a.param("index").num)
		if t.index < 1 {
			return cerr(a.tagPos("index"), "the :index tag requires a number greater than zero")
		}
		t.last = a.has("last")
	}
	return nil
}

// headerSpecs are the tags of header, address and envelope.
var headerSpecs = map[string]map[string]tagSpec{
	"header":   mergeTags(matchTags, indexTags),
	"address":  mergeTags(matchTags, addrTags, indexTags),
	"envelope": mergeTags(matchTags, addrTags),
}

var dateParts = map[string]bool{"year": true, "month": true, "day": true, "date": true, "julian": true,
	"hour": true, "minute": true, "second": true, "time": true, "iso8601": true, "std11": true,
	"zone": true, "weekday": true}

// validZone: "+hhmm" or "-hhmm" (RFC 5260 §4.1).
func validZone(s string) bool {
	if len(s) != 5 || (s[0] != '+' && s[0] != '-') {
		return false
	}
	for i := 1; i < 5; i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s[1:3] <= "23" && s[3:5] <= "59"
}
