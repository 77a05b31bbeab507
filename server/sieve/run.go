package sieve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Input is what a script runs against.
type Input struct {
	// EnvelopeFrom is MAIL FROM ("" = null sender); EnvelopeTo the
	// recipient (with its subaddress); Auth the authenticated user, if any.
	EnvelopeFrom, EnvelopeTo, Auth string
	// Msg is the message.
	Msg *Message
	// MailboxExists answers the mailbox extension's mailboxexists test
	// (RFC 5490 §3.1); nil means every mailbox exists.
	MailboxExists func(ctx context.Context, name string) (bool, error)
	// Include returns the compiled script for include (RFC 6609); an
	// error wrapping fs.ErrNotExist means there is none. Nil: every
	// include fails (a run-time error unless :optional).
	Include func(ctx context.Context, global bool, name string) (*Script, error)
	// DuplicateSeen answers the duplicate test (RFC 7352) for key (the
	// handle and the unique id): was it recorded within period? Nil:
	// nothing was seen.
	DuplicateSeen func(ctx context.Context, key string, period time.Duration) (bool, error)
	// Spamtest and Virustest configure RFC 5235's tests (nil: the tests
	// answer "0", not tested).
	Spamtest, Virustest *TestConfig
	// Now is the time for currentdate (nil: time.Now).
	Now func() time.Time
}

// TestConfig is how spamtest/virustest read a score, like pigeonhole's
// sieve_spamtest_status_type/_header/_max_value settings.
type TestConfig struct {
	// Header is the field holding the status (e.g. X-Spam-Level).
	Header string
	// Type is "strlen" (the score is the length of the value, as
	// X-Spam-Level's stars), "score" (a number in the value) or "text"
	// (Text maps exact values to the result 0..10 / 1..5).
	Type string
	// Max is the score that means certainly spam.
	Max float64
	// Text maps a status text to a value (Type "text").
	Text map[string]int
}

// Reject is a reject/ereject action (RFC 5429).
type Reject struct {
	Reason   string
	Extended bool
}

// Vacation is one vacation action (RFC 5230) to be vetted and sent by the
// caller (the script does not check history, lists or recipients).
type Vacation struct {
	// Sender is the envelope sender to answer.
	Sender string
	// From is :from ("" = the recipient's address).
	From string
	// Subject is :subject; SubjectGiven is false when the script gave none
	// (then RFC 5230 §4.3 wants "Auto: " + the original subject).
	Subject      string
	SubjectGiven bool
	// Body is the reason; a MIME entity when Mime is set.
	Body string
	Mime bool
	// Handle is :handle as given ("" = derive one from the content).
	Handle string
	// Days is :days (default 7); DaysGiven is false when the script gave
	// none (the site's default then applies). Seconds is :seconds (RFC
	// 6131), when SecondsGiven.
	Days         int
	DaysGiven    bool
	Seconds      int64
	SecondsGiven bool
	// Addresses is :addresses, the user's other addresses.
	Addresses []string
}

// HeaderEdit is an editheader action (RFC 5293): add a field (first, or
// last with Last) or delete the Index-th field of that name (1-based,
// counted in the message as it was when the edit ran).
type HeaderEdit struct {
	Action    string // "add" or "delete"
	FieldName string
	Value     string
	Last      bool
	Index     int
}

// Duplicate is a duplicate test id to be remembered when the delivery
// succeeds (RFC 7352 §3.1).
type Duplicate struct {
	Key    string
	Period time.Duration
}

// Outcome is the result of running a script.
type Outcome struct {
	// ImplicitKeep is true unless an action cancelled it; Keep is true when
	// keep was executed explicitly.
	ImplicitKeep, Keep bool
	// Mailboxes are the fileinto targets in order; Create those among them
	// with :create.
	Mailboxes, Create []string
	// Flags are the imap4flags flags of the implicit keep (the internal
	// variable at the end of the script).
	Flags []string
	// MailboxFlags are the flags of each fileinto's copy (RFC 5232 §5):
	// its :flags, or the internal variable when the fileinto ran.
	MailboxFlags map[string][]string
	// KeepFlags are the flags of an explicit keep's copy (not nil when
	// keep ran).
	KeepFlags []string
	// Redirects are the redirect addresses.
	Redirects []string
	// Reject is set when reject/ereject ran.
	Reject *Reject
	// Vacations are the vacation actions.
	Vacations []Vacation
	// HeaderEdits are the editheader actions in order.
	HeaderEdits []HeaderEdit
	// Duplicates are the duplicate ids to record.
	Duplicates []Duplicate
}

// KeepsMessage reports whether the message is to be stored in INBOX.
func (o *Outcome) KeepsMessage() bool {
	return o.Reject == nil && (o.ImplicitKeep || o.Keep)
}

// RuntimeError is a script failing at run time (RFC 5228 §2.10.6): the
// script's name, the line of the command and what went wrong.
type RuntimeError struct {
	Script string
	Line   int
	Msg    string
}

func (e *RuntimeError) Error() string {
	name := e.Script
	if name == "" {
		name = "script"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: error: %s", name, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: error: %s", name, e.Msg)
}

// errStop and errReturn unwind the interpreter.
var (
	errStop   = errors.New("stop")
	errReturn = errors.New("return")
)

const maxIncludes = 255

// run is one execution: the result being built and the shared state of
// the scripts (globals, flags, the message as edited).
type run struct {
	ctx     context.Context
	in      *Input
	out     *Outcome
	msg     *Message // copied on the first header edit
	edited  bool
	flags   []string
	globals map[string]string
	// included scripts for :once
	once      map[string]bool
	nIncludes int
	depth     int
	redirects int
	maxRedir  int
	kept      bool // an explicit keep/fileinto/redirect tried to deliver
	vacation  bool
	stores    map[string]bool
}

// frame is one script's execution: its local variables and match
// variables.
type frame struct {
	s       *Script
	vars    map[string]string
	globals map[string]bool
	matches []string
}

// Execute runs the script on in. An error (a *RuntimeError) means the
// script failed at run time; the caller keeps the message (RFC 5228
// §2.10.6).
func (s *Script) Execute(ctx context.Context, in *Input) (*Outcome, error) {
	r := &run{ctx: ctx, in: in, msg: in.Msg, out: &Outcome{ImplicitKeep: true},
		maxRedir: s.maxRedirects, stores: map[string]bool{}}
	if r.msg == nil {
		r.msg = NewMessage(nil)
	}
	err := r.script(s)
	if err != nil && err != errStop {
		return nil, err
	}
	r.out.Flags = slices.Clone(r.flags)
	return r.out, nil
}

func (r *run) script(s *Script) error {
	f := &frame{s: s}
	err := r.block(f, s.cmds)
	if err == errReturn {
		return nil
	}
	return err
}

func (r *run) fail(f *frame, p pos, format string, a ...any) error {
	return &RuntimeError{Script: f.s.name, Line: p.Line, Msg: fmt.Sprintf(format, a...)}
}

func (r *run) block(f *frame, cmds []*command) error {
	for _, c := range cmds {
		if err := r.ctx.Err(); err != nil {
			return r.fail(f, c.pos, "script ran too long: %v", err)
		}
		if err := r.command(f, c); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) command(f *frame, c *command) error {
	switch c.kind {
	case cIf:
		for i, t := range c.conds {
			ok := true
			if t != nil {
				var err error
				if ok, err = r.test(f, t); err != nil {
					return err
				}
			}
			if ok {
				return r.block(f, c.blocks[i])
			}
		}
	case cStop:
		return errStop
	case cReturn:
		return errReturn
	case cError:
		return r.fail(f, c.pos, "%s", r.expand(f, c.str))
	case cDiscard:
		r.out.ImplicitKeep = false
	case cKeep:
		if err := r.deliverCheck(f, c, "keep"); err != nil {
			return err
		}
		r.out.Keep = true
		r.out.ImplicitKeep = false
		r.out.KeepFlags = r.actionFlags(f, c)
	case cFileinto:
		if err := r.deliverCheck(f, c, "store"); err != nil {
			return err
		}
		mb := r.expand(f, c.str)
		if mb == "" || strings.EqualFold(mb, "INBOX") { // "" is INBOX, as in pigeonhole
			mb = "INBOX"
		}
		if !c.copy {
			r.out.ImplicitKeep = false
		}
		if r.stores[mb] {
			break // the same folder twice: one copy
		}
		r.stores[mb] = true
		r.out.Mailboxes = append(r.out.Mailboxes, mb)
		if c.create {
			r.out.Create = append(r.out.Create, mb)
		}
		if r.out.MailboxFlags == nil {
			r.out.MailboxFlags = map[string][]string{}
		}
		r.out.MailboxFlags[mb] = r.actionFlags(f, c)
	case cRedirect:
		if err := r.deliverCheck(f, c, "redirect"); err != nil {
			return err
		}
		addr := r.expand(f, c.str)
		if !c.copy {
			r.out.ImplicitKeep = false
		}
		if slices.Contains(r.out.Redirects, addr) {
			break
		}
		r.redirects++
		if r.redirects > r.maxRedir {
			return r.fail(f, c.pos, "number of redirect actions exceeds policy limit (%d > %d)", r.redirects, r.maxRedir)
		}
		r.out.Redirects = append(r.out.Redirects, addr)
	case cReject:
		if r.out.Reject != nil {
			return r.fail(f, c.pos, "duplicate reject/ereject action not allowed (previously triggered)")
		}
		if r.vacation {
			return r.fail(f, c.pos, "reject/ereject action conflicts with other action: the vacation action also sends a response back to the sender")
		}
		if r.kept {
			return r.fail(f, c.pos, "reject/ereject action conflicts with other action: an earlier action tries to deliver the message")
		}
		r.out.Reject = &Reject{Reason: r.expand(f, c.str), Extended: c.extended}
		r.out.ImplicitKeep = false
	case cSet:
		r.setVar(f, c.varName.lit, applyMods(r.expand(f, c.str), c.mods))
	case cSetflag, cAddflag, cRemoveflag:
		cur := r.flags
		if c.varName != nil {
			cur = strings.Fields(r.getVar(f, c.varName.lit))
		}
		var list []string
		for _, s := range c.strs {
			list = append(list, strings.Fields(r.expand(f, s))...)
		}
		switch c.kind {
		case cSetflag:
			cur = addFlags(nil, list)
		case cAddflag:
			cur = addFlags(slices.Clone(cur), list)
		default:
			cur = slices.DeleteFunc(slices.Clone(cur), func(x string) bool {
				return slices.ContainsFunc(list, func(y string) bool { return strings.EqualFold(x, y) })
			})
		}
		if c.varName != nil {
			r.setVar(f, c.varName.lit, strings.Join(cur, " "))
		} else {
			r.flags = cur
		}
	case cVacation:
		return r.vacationCmd(f, c)
	case cAddheader:
		name := r.expand(f, c.str)
		if !fieldNameRE.MatchString(name) {
			return r.fail(f, c.pos, "addheader action: specified field name `%s' is invalid", name)
		}
		val := r.expand(f, c.str2)
		r.editMsg()
		r.msg.add(name, val, c.last)
		r.out.HeaderEdits = append(r.out.HeaderEdits, HeaderEdit{Action: "add", FieldName: name, Value: val, Last: c.last})
	case cDeleteheader:
		return r.deleteHeader(f, c)
	case cInclude:
		return r.include(f, c)
	case cGlobal:
		if f.globals == nil {
			f.globals = map[string]bool{}
		}
		for _, v := range c.strs {
			f.globals[v.lit] = true
		}
	}
	return nil
}

// deliverCheck: keep, fileinto and redirect conflict with reject (RFC
// 5429 §2.2; pigeonhole's message).
func (r *run) deliverCheck(f *frame, c *command, what string) error {
	if r.out.Reject != nil {
		return r.fail(f, c.pos, "%s action conflicts with other action: the reject action refuses delivery of the message", what)
	}
	r.kept = true
	return nil
}

func (r *run) actionFlags(f *frame, c *command) []string {
	if !c.flagsGiven {
		return slices.Clone(r.flags)
	}
	var list []string
	for _, s := range c.flags {
		list = append(list, strings.Fields(r.expand(f, s))...)
	}
	return addFlags([]string{}, list)
}

func addFlags(cur, add []string) []string {
	if cur == nil {
		cur = []string{}
	}
	for _, a := range add {
		if !slices.ContainsFunc(cur, func(x string) bool { return strings.EqualFold(x, a) }) {
			cur = append(cur, a)
		}
	}
	return cur
}

func (r *run) vacationCmd(f *frame, c *command) error {
	if r.vacation {
		return r.fail(f, c.pos, "duplicate vacation action not allowed")
	}
	if r.out.Reject != nil {
		return r.fail(f, c.pos, "vacation action conflicts with other action: the reject action also sends a response back to the sender")
	}
	r.vacation = true
	if r.in.EnvelopeFrom == "" {
		return nil // RFC 5230 §4.5: never answer the null sender
	}
	v := Vacation{Sender: r.in.EnvelopeFrom, Body: r.expand(f, c.str), Mime: c.mime, Days: 7}
	if c.daysGiven {
		v.Days, v.DaysGiven = int(c.days), true
	}
	if c.secondsGive {
		v.Seconds, v.SecondsGiven = c.seconds, true
	}
	if c.subject != nil {
		v.Subject, v.SubjectGiven = r.expand(f, c.subject), true
	}
	if c.from != nil {
		v.From = r.expand(f, c.from)
	}
	if c.handle != nil {
		v.Handle = r.expand(f, c.handle)
	}
	for _, a := range c.strs {
		v.Addresses = append(v.Addresses, r.expand(f, a))
	}
	r.out.Vacations = append(r.out.Vacations, v)
	return nil
}

func (r *run) deleteHeader(f *frame, c *command) error {
	name := r.expand(f, c.str)
	ln := lower(name)
	if ln == "received" || ln == "auto-submitted" {
		return nil // RFC 5293 §7: never deleted
	}
	occ := r.msg.occurrences(ln)
	var drop []int // 1-based indexes among the fields of that name
	for k := range occ {
		idx := k + 1
		if c.index > 0 {
			want := c.index
			if c.last {
				want = len(occ) - c.index + 1
			}
			if idx != want {
				continue
			}
		}
		if c.keys != nil {
			ok, err := r.matchValues(f, c.match, []string{r.msg.fields[occ[k]].decoded()}, c.keys)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		drop = append(drop, idx)
	}
	if len(drop) == 0 {
		return nil
	}
	r.editMsg()
	// From the last, so earlier indexes stay valid.
	for i := len(drop) - 1; i >= 0; i-- {
		r.msg.remove(ln, drop[i])
		r.out.HeaderEdits = append(r.out.HeaderEdits, HeaderEdit{Action: "delete", FieldName: name, Index: drop[i]})
	}
	return nil
}

func (r *run) editMsg() {
	if !r.edited {
		r.msg = r.msg.clone()
		r.edited = true
	}
}

func (r *run) include(f *frame, c *command) error {
	name := c.str.lit
	key := fmt.Sprint(c.global, "\x00", name)
	if c.once && r.once[key] {
		return nil
	}
	if r.once == nil {
		r.once = map[string]bool{}
	}
	r.once[key] = true
	r.nIncludes++
	if r.nIncludes > maxIncludes {
		return r.fail(f, c.pos, "include: too many included scripts (max %d)", maxIncludes)
	}
	if r.depth >= maxIncludeDepth {
		return r.fail(f, c.pos, "include: cannot nest includes deeper than %d levels", maxIncludeDepth)
	}
	loc := "personal"
	if c.global {
		loc = "global"
	}
	if r.in.Include == nil {
		if c.optional {
			return nil
		}
		return r.fail(f, c.pos, "include: %s script '%s' is unavailable", loc, name)
	}
	s, err := r.in.Include(r.ctx, c.global, name)
	if err != nil {
		if c.optional && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return r.fail(f, c.pos, "include: failed to include %s script '%s': %v", loc, name, err)
	}
	r.depth++
	err = r.script(s)
	r.depth--
	return err
}

// Variables (RFC 5229, RFC 6609 §3.5 for globals).

func (r *run) isGlobal(f *frame, name string) (string, bool) {
	if strings.HasPrefix(name, "global.") {
		return name[len("global."):], true
	}
	if f.globals[name] {
		return name, true
	}
	return name, false
}

func (r *run) getVar(f *frame, name string) string {
	if n, ok := r.isGlobal(f, name); ok {
		return r.globals[n]
	}
	return f.vars[name]
}

const maxVarLen = 4000

func (r *run) setVar(f *frame, name, v string) {
	if len(v) > maxVarLen {
		v = v[:maxVarLen]
	}
	if n, ok := r.isGlobal(f, name); ok {
		if r.globals == nil {
			r.globals = map[string]string{}
		}
		r.globals[n] = v
		return
	}
	if f.vars == nil {
		f.vars = map[string]string{}
	}
	f.vars[name] = v
}

func (r *run) expand(f *frame, v *sval) string {
	if v.parts == nil {
		return v.lit
	}
	var b strings.Builder
	for _, p := range v.parts {
		switch {
		case p.name != "":
			b.WriteString(r.getVar(f, p.name))
		case p.match >= 0:
			if p.match < len(f.matches) {
				b.WriteString(f.matches[p.match])
			}
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

func (r *run) expandList(f *frame, vs []*sval) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = r.expand(f, v)
	}
	return out
}

// Tests.

func (r *run) test(f *frame, t *test) (bool, error) {
	switch t.kind {
	case tTrue:
		return true, nil
	case tFalse:
		return false, nil
	case tNot:
		ok, err := r.test(f, t.subs[0])
		return !ok, err
	case tAllof:
		for _, s := range t.subs {
			if ok, err := r.test(f, s); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case tAnyof:
		for _, s := range t.subs {
			if ok, err := r.test(f, s); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case tExists:
		for _, n := range t.names {
			if len(r.msg.occurrences(lower(r.expand(f, n)))) == 0 {
				return false, nil
			}
		}
		return true, nil
	case tSize:
		if t.over {
			return int64(r.msg.size) > t.size, nil
		}
		return int64(r.msg.size) < t.size, nil
	case tHeader:
		if len(t.names) == 1 {
			return r.matchValues(f, t.m, r.msg.values(lower(r.expand(f, t.names[0])), t.index, t.last), t.keys)
		}
		var vals []string
		for _, n := range t.names {
			vals = append(vals, r.msg.values(lower(r.expand(f, n)), t.index, t.last)...)
		}
		return r.matchValues(f, t.m, vals, t.keys)
	case tAddress:
		var vals []string
		for _, n := range t.names {
			for _, h := range r.msg.rawValues(lower(r.expand(f, n)), t.index, t.last) {
				for _, a := range r.msg.addresses(h) {
					if p, ok := addressPart(a, t.part); ok {
						vals = append(vals, p)
					}
				}
			}
		}
		return r.matchValues(f, t.m, vals, t.keys)
	case tEnvelope:
		var vals []string
		for _, n := range t.names {
			var a string
			switch lower(r.expand(f, n)) {
			case "from":
				a = r.in.EnvelopeFrom
			case "to":
				a = r.in.EnvelopeTo
			case "auth":
				a = r.in.Auth
				if a == "" {
					continue
				}
			default:
				continue
			}
			if a == "" {
				// The null reverse-path: only :all sees it, as "".
				if t.part == "all" {
					vals = append(vals, "")
				}
				continue
			}
			if p, ok := addressPart(a, t.part); ok {
				vals = append(vals, p)
			}
		}
		return r.matchValues(f, t.m, vals, t.keys)
	case tBody:
		// The body test sets no match variables (and leaves those of
		// an earlier test as they are), as pigeonhole's
		// (TestBodyMatchVariablesLikePigeonhole).
		if r.msg.bodyLen() <= bodyThreshold {
			vals := r.msg.bodyTexts(t.transform, t.ctypes)
			return r.matchValuesVars(f, t.m, vals, t.keys, false)
		}
		return r.bodyStream(f, t)
	case tDate, tCurrentdate:
		return r.dateTest(f, t)
	case tHasflag:
		var vals []string
		if len(t.names) == 0 {
			vals = slices.Clone(r.flags)
		} else {
			for _, n := range t.names {
				vals = append(vals, strings.Fields(r.getVar(f, n.lit))...)
			}
		}
		return r.matchValues(f, t.m, vals, t.keys)
	case tStringTest:
		vals := r.expandList(f, t.names)
		if t.m.typ == "count" {
			vals = slices.DeleteFunc(vals, func(s string) bool { return s == "" })
		}
		return r.matchValues(f, t.m, vals, t.keys)
	case tMailboxexists:
		for _, n := range t.names {
			name := r.expand(f, n)
			if r.in.MailboxExists == nil {
				continue
			}
			ok, err := r.in.MailboxExists(r.ctx, name)
			if err != nil {
				return false, r.fail(f, t.pos, "mailboxexists: %v", err)
			}
			if !ok {
				return false, nil
			}
		}
		return true, nil
	case tIhave:
		return t.ihaveOK, nil
	case tDuplicate:
		return r.duplicate(f, t)
	case tSpamtest, tVirustest:
		cfg := r.in.Spamtest
		if t.kind == tVirustest {
			cfg = r.in.Virustest
		}
		v := testValue(cfg, r.msg, t.kind == tVirustest, t.percent)
		return r.matchValues(f, t.m, []string{v}, t.keys)
	}
	return false, nil
}

// matchValues compares values with keys (RFC 5228 §2.7); a match with
// :matches/:regex sets the match variables.
func (r *run) matchValues(f *frame, m *matcher, values []string, keys []*sval) (bool, error) {
	return r.matchValuesVars(f, m, values, keys, true)
}

// matchValuesVars is matchValues; setVars false leaves the match
// variables alone.
func (r *run) matchValuesVars(f *frame, m *matcher, values []string, keys []*sval, setVars bool) (bool, error) {
	if m.typ == "count" {
		n := strconv.Itoa(len(values))
		for _, k := range keys {
			if relation(m.rel, compare(m.cmp, n, r.expand(f, k))) {
				return true, nil
			}
		}
		return false, nil
	}
	wantVars := setVars && (m.typ == "matches" || m.typ == "regex") && f.s.hasVariables()
	for _, v := range values {
		for i, k := range keys {
			var re *regexp.Regexp
			if m.re != nil {
				re = m.re[i]
			}
			ok, caps, err := m.matchOne(v, r.expand(f, k), re, wantVars)
			if err != nil {
				if re2, isRT := err.(*RuntimeError); isRT {
					re2.Script, re2.Line = f.s.name, 0
				}
				return false, err
			}
			if ok {
				if wantVars {
					if len(caps) > 10 {
						caps = caps[:10]
					}
					f.matches = caps
				}
				return true, nil
			}
		}
	}
	return false, nil
}

// bodyStream is the body test on a body bigger than bodyThreshold:
// matchValues over the values walkBody finds, each read as a stream (no
// match variables, as in the in-memory path).
func (r *run) bodyStream(f *frame, t *test) (bool, error) {
	m := t.m
	count, matched := 0, false
	err := r.msg.walkBody(r.ctx, t.transform, t.ctypes, func(v bodyValue) (bool, error) {
		if m.typ == "count" {
			count++
			return false, nil
		}
		for i, k := range t.keys {
			var re *regexp.Regexp
			if m.re != nil {
				re = m.re[i]
			}
			var ok bool
			var err error
			if v.small {
				ok, _, err = m.matchOne(v.text, r.expand(f, k), re, false)
			} else {
				ok, err = m.matchStream(v.open, r.expand(f, k), re)
			}
			if err != nil {
				if re2, isRT := err.(*RuntimeError); isRT {
					re2.Script, re2.Line = f.s.name, 0
				}
				return true, err
			}
			if ok {
				matched = true
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		if _, isRT := err.(*RuntimeError); isRT {
			return false, err
		}
		return false, r.fail(f, t.pos, "body: reading the message: %v", err)
	}
	if m.typ == "count" {
		n := strconv.Itoa(count)
		for _, k := range t.keys {
			if relation(m.rel, compare(m.cmp, n, r.expand(f, k))) {
				return true, nil
			}
		}
		return false, nil
	}
	return matched, nil
}

func (s *Script) hasVariables() bool { return slices.Contains(s.required, "variables") }

func (r *run) duplicate(f *frame, t *test) (bool, error) {
	var id string
	switch {
	case t.dupID != nil:
		id = r.expand(f, t.dupID)
	case t.dupHeader != nil:
		vals := r.msg.values(lower(r.expand(f, t.dupHeader)), 0, false)
		if len(vals) == 0 {
			return false, nil
		}
		id = vals[0]
	default:
		vals := r.msg.values("message-id", 0, false)
		if len(vals) == 0 {
			return false, nil
		}
		id = vals[0]
	}
	handle := ""
	if t.dupHandle != nil {
		handle = r.expand(f, t.dupHandle)
	}
	key := handle + "\x00" + id
	period := 7 * 24 * time.Hour
	if t.dupSecondsGiven {
		period = time.Duration(t.dupSeconds) * time.Second
	}
	seen := false
	if r.in.DuplicateSeen != nil {
		var err error
		if seen, err = r.in.DuplicateSeen(r.ctx, key, period); err != nil {
			return false, r.fail(f, t.pos, "duplicate: %v", err)
		}
	}
	for _, d := range r.out.Duplicates {
		if d.Key == key {
			seen = true
		}
	}
	r.out.Duplicates = append(r.out.Duplicates, Duplicate{Key: key, Period: period})
	return seen, nil
}

// testValue computes spamtest/virustest's value (RFC 5235 §3): "0" when
// the message was not tested, else 1..10 (spamtest), 0..100 (:percent) or
// 1..5 (virustest), as pigeonhole computes it from the status header.
func testValue(cfg *TestConfig, m *Message, virus, percent bool) string {
	if cfg == nil || cfg.Header == "" {
		return "0"
	}
	vals := m.values(lower(cfg.Header), 0, false)
	if len(vals) == 0 {
		return "0"
	}
	v := vals[0]
	top := 10
	if virus {
		top = 5
	}
	switch cfg.Type {
	case "text":
		n, ok := cfg.Text[v]
		if !ok {
			return "0"
		}
		if percent {
			return strconv.Itoa(n * 100 / top)
		}
		return strconv.Itoa(n)
	}
	var score float64
	if cfg.Type == "score" {
		var err error
		if score, err = strconv.ParseFloat(strings.Fields(v + " x")[0], 64); err != nil {
			return "0"
		}
	} else {
		score = float64(len(v))
	}
	max := cfg.Max
	if max <= 0 {
		max = 10
	}
	if score > max {
		score = max
	}
	if score < 0 {
		score = 0
	}
	if percent {
		return strconv.Itoa(int(score / max * 100))
	}
	return strconv.Itoa(1 + int(score/max*float64(top-1)))
}

// Addresses.

// invalidAddr marks a header value that is not an address list: as in
// pigeonhole, it is one item whose :all is the raw value and which has no
// local part or domain.
const invalidAddr = "\x00"

// parseAddressList reads a header's addresses as pigeonhole does, lenient
// about groups and display names: the addr-specs, in order; a value that
// is not a list of addresses is one invalid item (invalidAddr + value).
func parseAddressList(h string) []string {
	if as, err := mail.ParseAddressList(h); err == nil && len(as) > 0 {
		out := make([]string, 0, len(as))
		for _, a := range as {
			out = append(out, a.Address)
		}
		return out
	}
	out := lenientAddresses(h)
	for _, a := range out {
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 {
			out = nil
			break
		}
	}
	if len(out) == 0 {
		if v := strings.TrimSpace(h); v != "" {
			return []string{invalidAddr + v}
		}
	}
	return out
}

func lenientAddresses(h string) []string {
	var out []string
	for _, part := range splitAddresses(h) {
		part = strings.TrimSpace(part)
		if i := strings.IndexByte(part, ':'); i >= 0 && !strings.Contains(part[:i], "<") && !strings.Contains(part[:i], "\"") {
			part = strings.TrimSpace(part[i+1:]) // group name
		}
		part = strings.TrimSuffix(part, ";")
		if a, err := mail.ParseAddress(part); err == nil {
			out = append(out, a.Address)
			continue
		}
		if i := strings.LastIndexByte(part, '<'); i >= 0 {
			if j := strings.IndexByte(part[i:], '>'); j > 0 {
				out = append(out, strings.TrimSpace(part[i+1:i+j]))
				continue
			}
		}
		if part = stripComments(part); part != "" {
			out = append(out, strings.Join(strings.Fields(part), ""))
		}
	}
	return out
}

func splitAddresses(h string) []string {
	var out []string
	depth, quoted, angle := 0, false, false
	start := 0
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case (c == ',' || c == ';') && depth == 0 && !angle:
			out = append(out, h[start:i])
			start = i + 1
		}
	}
	return append(out, h[start:])
}

func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
				continue
			}
		}
		if depth == 0 {
			b.WriteByte(s[i])
		}
	}
	return strings.TrimSpace(b.String())
}

// addressPart extracts an address part (RFC 5228 §2.7.4, RFC 5233 for
// :user/:detail with "+" as the separator); ok is false when the part
// does not exist (no domain, no detail).
func addressPart(a, part string) (string, bool) {
	if raw, ok := strings.CutPrefix(a, invalidAddr); ok {
		return raw, part == "all"
	}
	at := strings.LastIndexByte(a, '@')
	local, domain := a, ""
	if at >= 0 {
		local, domain = a[:at], a[at+1:]
	}
	switch part {
	case "localpart":
		return local, true
	case "domain":
		return domain, at >= 0
	case "user":
		u, _, _ := strings.Cut(local, "+")
		return u, true
	case "detail":
		_, d, ok := strings.Cut(local, "+")
		return d, ok
	}
	return a, true
}
