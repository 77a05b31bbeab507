// Package sieve is mailmig's Sieve engine (RFC 5228): its own lexer,
// parser, validator (the checks pigeonhole's sievec makes, with line and
// column) and interpreter over mailmig's types; the one list of enabled
// extensions (also ManageSieve's SIEVE capability, RFC 5804 §1.7); and
// dovecot-style script storage: ~/sieve/NAME.sieve with the active script
// linked from ~/.dovecot.sieve (Storage).
//
// Why its own interpreter rather than a library: docs/sieve.md ("The
// engine"). In short, per-action flags (RFC 5232 §5), include (RFC 6609),
// :index (RFC 5260) and case-keeping captures need an action model the
// library did not have.
//
// Implementation notes:
//   - Compile produces an immutable tree (constant strings, regexes and
//     numbers prepared once); Execute is safe for concurrent use.
//   - Strings containing "${" are split into literal and variable parts
//     at compile time when the script requires "variables".
package sieve

import (
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"regexp"
	"slices"
	"strings"
)

// extensions is the one list of enabled extensions, in capability order.
var extensions = []string{
	"fileinto", "reject", "ereject", "envelope", "encoded-character",
	"comparator-i;octet", "comparator-i;ascii-casemap",
	"comparator-i;ascii-numeric", "comparator-i;unicode-casemap",
	"imap4flags", "variables", "relational", "vacation", "vacation-seconds",
	"copy", "regex", "date", "index", "editheader", "mailbox", "subaddress",
	"body", "include", "duplicate", "spamtest", "spamtestplus", "virustest",
	"ihave",
}

// Extensions returns the enabled Sieve extensions (a fresh slice), for the
// interpreter and for ManageSieve's "SIEVE" capability.
func Extensions() []string { return slices.Clone(extensions) }

// Capability returns Extensions joined by spaces, as ManageSieve's SIEVE
// capability value.
func Capability() string { return strings.Join(extensions, " ") }

// DefaultMaxRedirects is how many redirects a run may do, pigeonhole's
// sieve_max_redirects default; ManageSieve announces it as MAXREDIRECTS.
const DefaultMaxRedirects = 4

func supported(ext string) bool { return slices.Contains(extensions, ext) }

// ScriptError is a compile error with its position (1-based; 0 when
// unknown).
type ScriptError struct {
	Line, Col int
	Msg       string
}

func (e *ScriptError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
	}
	return e.Msg
}

// Options tune compilation; the zero value means the defaults.
type Options struct {
	// MaxRedirects bounds redirect actions per run (0 =
	// DefaultMaxRedirects).
	MaxRedirects int
	// Include, when set, is asked at compile time for each include with a
	// constant name (RFC 6609): it returns the script's text, or an error
	// wrapping fs.ErrNotExist when there is none (an error unless
	// :optional). global is true for :global. Nil: includes are checked
	// only at run time.
	Include func(global bool, name string) ([]byte, error)
	// Name names the script in run-time error messages.
	Name string
}

// Script is a compiled Sieve script.
type Script struct {
	name         string
	cmds         []*command
	required     []string
	maxRedirects int
	hasVacation  bool
}

// Requires returns the extensions the script requires.
func (s *Script) Requires() []string { return slices.Clone(s.required) }

// Name is the script's name as given in Options.Name.
func (s *Script) Name() string { return s.name }

// Validate compiles src and returns the first error (a *ScriptError).
func Validate(src []byte) error {
	_, err := Compile(src, Options{})
	return err
}

// Compile compiles src. Errors are *ScriptError with the position of the
// fault and pigeonhole's wording where it has one.
func Compile(src []byte, o Options) (*Script, error) {
	nodes, err := parse(string(src))
	if err != nil {
		return nil, err
	}
	c := &compiler{exts: map[string]bool{}, opts: o}
	s := &Script{name: o.Name, maxRedirects: o.MaxRedirects}
	if s.maxRedirects <= 0 {
		s.maxRedirects = DefaultMaxRedirects
	}
	// require: only at the top, before anything else (RFC 5228 §3.2).
	i := 0
	for ; i < len(nodes) && nodes[i].name == "require"; i++ {
		if err := c.require(nodes[i]); err != nil {
			return nil, err
		}
	}
	s.cmds, err = c.block(nodes[i:], 0)
	if err != nil {
		return nil, err
	}
	for e := range c.exts {
		s.required = append(s.required, e)
	}
	slices.Sort(s.required)
	s.hasVacation = c.exts["vacation"]
	return s, nil
}

type compiler struct {
	exts map[string]bool
	opts Options
	// blocked is >0 inside an ihave block whose capabilities are missing:
	// its commands are never run and not validated (RFC 5463 §3).
	reported map[string]bool
}

func cerr(p pos, format string, a ...any) error {
	return &ScriptError{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, a...)}
}

func (c *compiler) has(ext string) bool { return c.exts[ext] }

func (c *compiler) require(n *node) error {
	if len(n.args) != 1 || n.args[0].kind != aStr || len(n.tests) > 0 || n.hasBlock {
		return cerr(n.pos, "the require command requires one string or string list argument")
	}
	for _, e := range n.args[0].strs {
		if !supported(e) {
			return cerr(n.args[0].pos, "require command: unknown Sieve capability `%s'.", e)
		}
		c.enable(e)
	}
	return nil
}

func (c *compiler) enable(e string) {
	c.exts[e] = true
	switch e {
	case "spamtestplus":
		c.exts["spamtest"] = true
	case "vacation-seconds":
		c.exts["vacation"] = true
	}
}

// cmdKind is what a compiled command does.
type cmdKind int

const (
	cIf cmdKind = iota
	cStop
	cKeep
	cDiscard
	cRedirect
	cFileinto
	cReject
	cSet
	cSetflag
	cAddflag
	cRemoveflag
	cVacation
	cAddheader
	cDeleteheader
	cInclude
	cReturn
	cGlobal
	cError
	cNop
)

// command is a compiled command.
type command struct {
	kind cmdKind
	pos  pos
	name string

	// cIf: conds[i] guards blocks[i]; a nil cond is the else branch.
	conds  []*test
	blocks [][]*command

	str, str2  *sval   // main arguments (mailbox, address, reason, name, value)
	strs       []*sval // flag lists, variable names, :addresses
	flags      []*sval // :flags (nil = not given)
	flagsGiven bool
	copy       bool
	create     bool
	last       bool
	extended   bool // ereject
	index      int
	mods       []string
	varName    *sval // setflag etc. with a variable name

	// vacation
	days, seconds          int64
	daysGiven, secondsGive bool
	subject, from, handle  *sval
	mime                   bool

	// include
	global, once, optional bool

	// deleteheader
	match *matcher
	keys  []*sval
}

func (c *compiler) block(nodes []*node, depth int) ([]*command, error) {
	out := make([]*command, 0, len(nodes))
	for i := 0; i < len(nodes); i++ {
		n := nodes[i]
		if n.name == "if" {
			cmd := &command{kind: cIf, pos: n.pos, name: n.name}
			for {
				t, blk, err := c.branch(nodes[i], depth)
				if err != nil {
					return nil, err
				}
				cmd.conds = append(cmd.conds, t)
				cmd.blocks = append(cmd.blocks, blk)
				if i+1 < len(nodes) && (nodes[i+1].name == "elsif" || nodes[i+1].name == "else") {
					i++
					if nodes[i].name == "else" {
						if len(nodes[i].args) > 0 || len(nodes[i].tests) > 0 {
							return nil, cerr(nodes[i].pos, "the else command accepts no arguments")
						}
						if !nodes[i].hasBlock {
							return nil, cerr(nodes[i].pos, "the else command requires a command block")
						}
						blk, err := c.block(nodes[i].block, depth+1)
						if err != nil {
							return nil, err
						}
						cmd.conds = append(cmd.conds, nil)
						cmd.blocks = append(cmd.blocks, blk)
						break
					}
					continue
				}
				break
			}
			out = append(out, cmd)
			continue
		}
		if n.name == "elsif" || n.name == "else" {
			return nil, cerr(n.pos, "the %s command must follow an if or elseif command", n.name)
		}
		cmd, err := c.command(n, depth)
		if err != nil {
			return nil, err
		}
		if cmd != nil {
			out = append(out, cmd)
		}
	}
	return out, nil
}

// branch compiles the test and block of an if or elsif.
func (c *compiler) branch(n *node, depth int) (*test, []*command, error) {
	if len(n.args) > 0 || len(n.tests) != 1 || n.testList {
		return nil, nil, cerr(n.pos, "the %s command requires one test argument", n.name)
	}
	if !n.hasBlock {
		return nil, nil, cerr(n.pos, "the %s command requires a command block", n.name)
	}
	t, err := c.test(n.tests[0])
	if err != nil {
		return nil, nil, err
	}
	// ihave (RFC 5463 §4): a block guarded by ihave for missing
	// capabilities is not validated; present ones become usable in it.
	if t.kind == tIhave {
		if !t.ihaveOK {
			return t, nil, nil
		}
		saved := c.exts
		c.exts = maps(saved)
		for _, e := range t.ihaveExts {
			c.enable(e)
		}
		blk, err := c.block(n.block, depth+1)
		c.exts = saved
		return t, blk, err
	}
	blk, err := c.block(n.block, depth+1)
	return t, blk, err
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// args is a node's arguments sorted into tags and positionals.
type args struct {
	n    *node
	tags []tagArg
	pos  []arg
}

type tagArg struct {
	name       string
	tag, param arg
	group      string
}

// tagSpec says whether a tag takes a parameter and which extension
// provides it.
type tagSpec struct {
	param argKind // aTag = no parameter
	ext   string
	group string // mutually exclusive tags share a group
}

var (
	matchTags = map[string]tagSpec{
		"is": {aTag, "", "match"}, "contains": {aTag, "", "match"}, "matches": {aTag, "", "match"},
		"regex": {aTag, "regex", "match"}, "value": {aStr, "relational", "match"}, "count": {aStr, "relational", "match"},
		"comparator": {aStr, "", "comparator"},
	}
	addrTags = map[string]tagSpec{
		"all": {aTag, "", "part"}, "localpart": {aTag, "", "part"}, "domain": {aTag, "", "part"},
		"user": {aTag, "subaddress", "part"}, "detail": {aTag, "subaddress", "part"},
	}
	indexTags = map[string]tagSpec{"index": {aNum, "index", "index"}, "last": {aTag, "index", "last"}}
)

func mergeTags(ms ...map[string]tagSpec) map[string]tagSpec {
	out := map[string]tagSpec{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// sortArgs checks a node's tags against spec and counts positionals
// (min..max); what says "test" or "command" in messages.
func (c *compiler) sortArgs(n *node, what string, spec map[string]tagSpec, minPos, maxPos int) (*args, error) {
	a := &args{n: n}
	for i := 0; i < len(n.args); i++ {
		x := n.args[i]
		if x.kind != aTag {
			a.pos = append(a.pos, x)
			continue
		}
		if len(a.pos) > 0 {
			return nil, cerr(x.pos, "the %s %s has a tagged argument ':%s' after its positional arguments", n.name, what, x.tag)
		}
		ts, ok := spec[x.tag]
		if !ok || (ts.ext != "" && !c.has(ts.ext)) {
			return nil, cerr(x.pos, "unknown tagged argument ':%s' for the %s %s (reported only once at first occurence)", x.tag, n.name, what)
		}
		if a.has(x.tag) {
			return nil, cerr(x.pos, "encountered duplicate tagged argument ':%s' for the %s %s", x.tag, n.name, what)
		}
		if ts.group != "" && ts.group != x.tag {
			for _, o := range a.tags {
				if o.group == ts.group {
					return nil, cerr(x.pos, "the %s %s cannot take both :%s and :%s", n.name, what, o.name, x.tag)
				}
			}
		}
		ta := tagArg{name: x.tag, tag: x}
		if ts.group != x.tag {
			ta.group = ts.group
		}
		if ts.param != aTag {
			if i+1 >= len(n.args) || n.args[i+1].kind != ts.param {
				kind := "string"
				if ts.param == aNum {
					kind = "number"
				}
				return nil, cerr(x.pos, "the :%s tag for the %s %s requires a %s parameter", x.tag, n.name, what, kind)
			}
			i++
			ta.param = n.args[i]
		}
		a.tags = append(a.tags, ta)
	}
	if len(a.pos) < minPos || len(a.pos) > maxPos {
		want := fmt.Sprint(minPos)
		if maxPos != minPos {
			want = fmt.Sprintf("%d to %d", minPos, maxPos)
		}
		return nil, cerr(n.pos, "the %s %s requires %s positional argument(s), but %d is/are specified.", n.name, what, want, len(a.pos))
	}
	return a, nil
}

func (a *args) find(tag string) *tagArg {
	for i := range a.tags {
		if a.tags[i].name == tag {
			return &a.tags[i]
		}
	}
	return nil
}

func (a *args) has(tag string) bool { return a.find(tag) != nil }

func (a *args) param(tag string) arg {
	if t := a.find(tag); t != nil {
		return t.param
	}
	return arg{}
}

// tagPos is where tag was written.
func (a *args) tagPos(tag string) pos {
	if t := a.find(tag); t != nil {
		return t.tag.pos
	}
	return a.n.pos
}

// str returns positional i as one string.
func (c *compiler) posString(a *args, i int, what string) (*sval, error) {
	x := a.pos[i]
	if x.kind != aStr || len(x.strs) != 1 {
		return nil, cerr(x.pos, "the %s %s expects a string as argument %d (%s), but %s was found", a.n.name, what, i+1, "value", x.describe())
	}
	return c.sval(x.strs[0]), nil
}

func (c *compiler) posList(a *args, i int, what string) ([]*sval, error) {
	x := a.pos[i]
	if x.kind != aStr {
		return nil, cerr(x.pos, "the %s %s expects a string list as argument %d, but %s was found", a.n.name, what, i+1, x.describe())
	}
	out := make([]*sval, len(x.strs))
	for k, s := range x.strs {
		out[k] = c.sval(s)
	}
	return out, nil
}

func (c *compiler) noTests(n *node, what string) error {
	if len(n.tests) > 0 && !n.testList {
		return cerr(n.argsEnd, "missing semicolon ';' after %s %s", n.name, what)
	}
	if len(n.tests) > 0 {
		return cerr(n.pos, "the %s %s accepts no tests", n.name, what)
	}
	return nil
}

var cmdExt = map[string]string{
	"fileinto": "fileinto", "reject": "reject", "ereject": "ereject", "set": "variables",
	"setflag": "imap4flags", "addflag": "imap4flags", "removeflag": "imap4flags",
	"vacation": "vacation", "addheader": "editheader", "deleteheader": "editheader",
	"include": "include", "return": "include", "global": "include", "error": "ihave",
}

var fieldNameRE = regexp.MustCompile(`^[!-9;-~]+$`)

func (c *compiler) command(n *node, depth int) (*command, error) {
	if n.name == "require" {
		return nil, cerr(n.pos, "require commands can only be placed at top level at the beginning of the file.")
	}
	if ext, ok := cmdExt[n.name]; ok && !c.has(ext) {
		return nil, cerr(n.pos, "unknown command '%s' (only reported once at first occurrence)", n.name)
	}
	if n.hasBlock {
		switch n.name {
		case "stop", "keep", "discard", "redirect", "fileinto", "reject", "ereject", "set", "setflag", "addflag",
			"removeflag", "vacation", "addheader", "deleteheader", "include", "return", "global", "error":
			return nil, cerr(n.pos, "the %s command does not accept a command block", n.name)
		}
	}
	if err := c.noTests(n, "command"); err != nil {
		return nil, err
	}
	cmd := &command{pos: n.pos, name: n.name}
	none := map[string]tagSpec{}
	flagTags := map[string]tagSpec{"flags": {aStr, "imap4flags", ""}}
	switch n.name {
	case "stop", "discard", "return":
		if _, err := c.sortArgs(n, "command", none, 0, 0); err != nil {
			return nil, err
		}
		cmd.kind = map[string]cmdKind{"stop": cStop, "discard": cDiscard, "return": cReturn}[n.name]
	case "keep":
		a, err := c.sortArgs(n, "command", flagTags, 0, 0)
		if err != nil {
			return nil, err
		}
		cmd.kind = cKeep
		c.actionFlags(cmd, a)
	case "fileinto":
		a, err := c.sortArgs(n, "command", mergeTags(flagTags, map[string]tagSpec{
			"copy": {aTag, "copy", ""}, "create": {aTag, "mailbox", ""}}), 1, 1)
		if err != nil {
			return nil, err
		}
		cmd.kind = cFileinto
		if cmd.str, err = c.posString(a, 0, "command"); err != nil {
			return nil, err
		}
		cmd.copy, cmd.create = a.has("copy"), a.has("create")
		c.actionFlags(cmd, a)
	case "redirect":
		a, err := c.sortArgs(n, "command", map[string]tagSpec{"copy": {aTag, "copy", ""}}, 1, 1)
		if err != nil {
			return nil, err
		}
		cmd.kind = cRedirect
		if cmd.str, err = c.posString(a, 0, "command"); err != nil {
			return nil, err
		}
		cmd.copy = a.has("copy")
		if s, ok := cmd.str.constant(); ok {
			if _, err := mail.ParseAddress(s); err != nil {
				if _, err2 := mail.ParseAddress(strings.Join(strings.Fields(s), "")); err2 != nil {
					return nil, cerr(a.pos[0].pos, "specified redirect address '%s' is invalid", s)
				}
			}
		}
	case "reject", "ereject":
		a, err := c.sortArgs(n, "command", none, 1, 1)
		if err != nil {
			return nil, err
		}
		cmd.kind, cmd.extended = cReject, n.name == "ereject"
		if cmd.str, err = c.posString(a, 0, "command"); err != nil {
			return nil, err
		}
	case "error":
		a, err := c.sortArgs(n, "command", none, 1, 1)
		if err != nil {
			return nil, err
		}
		cmd.kind = cError
		if cmd.str, err = c.posString(a, 0, "command"); err != nil {
			return nil, err
		}
	case "set":
		spec := map[string]tagSpec{
			"lower": {aTag, "", "case"}, "upper": {aTag, "", "case"},
			"lowerfirst": {aTag, "", "first"}, "upperfirst": {aTag, "", "first"},
			"quotewildcard": {aTag, "", "quote"}, "quoteregex": {aTag, "regex", "quote"},
			"length": {aTag, "", ""},
		}
		a, err := c.sortArgs(n, "command", spec, 2, 2)
		if err != nil {
			return nil, err
		}
		cmd.kind = cSet
		name, err := c.posString(a, 0, "command")
		if err != nil {
			return nil, err
		}
		nm, ok := name.constant()
		if !ok || !validVarName(nm, false) {
			return nil, cerr(a.pos[0].pos, "invalid variable name '%s'.", a.pos[0].strs[0])
		}
		cmd.varName = &sval{lit: lower(nm)}
		if cmd.str, err = c.posString(a, 1, "command"); err != nil {
			return nil, err
		}
		// RFC 5229 §4.1: applied by precedence, highest first.
		for _, m := range []string{"lower", "upper", "lowerfirst", "upperfirst", "quotewildcard", "quoteregex", "length"} {
			if a.has(m) {
				cmd.mods = append(cmd.mods, m)
			}
		}
	case "setflag", "addflag", "removeflag":
		a, err := c.sortArgs(n, "command", none, 1, 2)
		if err != nil {
			return nil, err
		}
		cmd.kind = map[string]cmdKind{"setflag": cSetflag, "addflag": cAddflag, "removeflag": cRemoveflag}[n.name]
		i := 0
		if len(a.pos) == 2 {
			if !c.has("variables") {
				return nil, cerr(a.pos[0].pos, "the %s command requires 1 positional argument(s), but 2 is/are specified.", n.name)
			}
			v, err := c.posString(a, 0, "command")
			if err != nil {
				return nil, err
			}
			nm, _ := v.constant()
			if !validVarName(nm, true) {
				return nil, cerr(a.pos[0].pos, "invalid variable name '%s'.", nm)
			}
			cmd.varName = &sval{lit: lower(nm)}
			i = 1
		}
		if cmd.strs, err = c.posList(a, i, "command"); err != nil {
			return nil, err
		}
	case "vacation":
		spec := map[string]tagSpec{
			"days": {aNum, "", "period"}, "seconds": {aNum, "vacation-seconds", "period"},
			"subject": {aStr, "", ""}, "from": {aStr, "", ""}, "addresses": {aStr, "", ""},
			"mime": {aTag, "", ""}, "handle": {aStr, "", ""},
		}
		a, err := c.sortArgs(n, "command", spec, 1, 1)
		if err != nil {
			return nil, err
		}
		cmd.kind = cVacation
		if cmd.str, err = c.posString(a, 0, "command"); err != nil {
			return nil, err
		}
		if a.has("days") {
			cmd.days, cmd.daysGiven = a.param("days").num, true
		}
		if a.has("seconds") {
			cmd.seconds, cmd.secondsGive = a.param("seconds").num, true
		}
		one := func(tag string) (*sval, error) {
			if !a.has(tag) {
				return nil, nil
			}
			p := a.param(tag)
			if len(p.strs) != 1 {
				return nil, cerr(p.pos, "the :%s tag for the vacation command requires a string parameter", tag)
			}
			return c.sval(p.strs[0]), nil
		}
		if cmd.subject, err = one("subject"); err != nil {
			return nil, err
		}
		if cmd.from, err = one("from"); err != nil {
			return nil, err
		}
		if cmd.handle, err = one("handle"); err != nil {
			return nil, err
		}
		if cmd.from != nil {
			if s, ok := cmd.from.constant(); ok {
				if _, err := mail.ParseAddress(s); err != nil {
					return nil, cerr(a.param("from").pos, "specified :from address '%s' is invalid for vacation action", s)
				}
			}
		}
		if a.has("addresses") {
			for _, s := range a.param("addresses").strs {
				cmd.strs = append(cmd.strs, c.sval(s))
			}
		}
		cmd.mime = a.has("mime")
	case "addheader":
		a, err := c.sortArgs(n, "command", map[string]tagSpec{"last": {aTag, "", ""}}, 2, 2)
		if err != nil {
			return nil, err
		}
		cmd.kind = cAddheader
		cmd.last = a.has("last")
		if cmd.str, err = c.posString(a, 0, "command"); err != nil {
			return nil, err
		}
		if cmd.str2, err = c.posString(a, 1, "command"); err != nil {
			return nil, err
		}
		if s, ok := cmd.str.constant(); ok && !fieldNameRE.MatchString(s) {
			return nil, cerr(a.pos[0].pos, "addheader command: specified field name `%s' is invalid", s)
		}
		if s, ok := cmd.str2.constant(); ok && strings.ContainsAny(s, "\x00") {
			return nil, cerr(a.pos[1].pos, "addheader command: specified value `%s' is invalid", s)
		}
	case "deleteheader":
		a, err := c.sortArgs(n, "command", mergeTags(matchTags, indexTags), 1, 2)
		if err != nil {
			return nil, err
		}
		cmd.kind = cDeleteheader
		if a.has("last") && !a.has("index") {
			return nil, cerr(a.tagPos("last"), "the :last tag for the deleteheader command cannot be specified without the :index tag")
		}
		if a.has("index") {
			cmd.index = int(a.param("index").num)
			if cmd.index < 1 {
				return nil, cerr(a.tagPos("index"), "the :index tag requires a number greater than zero")
			}
		}
		cmd.last = a.has("last")
		if cmd.str, err = c.posString(a, 0, "command"); err != nil {
			return nil, err
		}
		if s, ok := cmd.str.constant(); ok && !fieldNameRE.MatchString(s) {
			return nil, cerr(a.pos[0].pos, "deleteheader command: specified field name `%s' is invalid", s)
		}
		if cmd.match, err = c.matcher(a, "command"); err != nil {
			return nil, err
		}
		if len(a.pos) == 2 {
			if cmd.keys, err = c.keys(a, 1, cmd.match, "command"); err != nil {
				return nil, err
			}
		}
	case "include":
		spec := map[string]tagSpec{"personal": {aTag, "", "location"}, "global": {aTag, "", "location"},
			"once": {aTag, "", ""}, "optional": {aTag, "", ""}}
		a, err := c.sortArgs(n, "command", spec, 1, 1)
		if err != nil {
			return nil, err
		}
		cmd.kind = cInclude
		cmd.global, cmd.once, cmd.optional = a.has("global"), a.has("once"), a.has("optional")
		if a.pos[0].kind != aStr || len(a.pos[0].strs) != 1 {
			return nil, cerr(a.pos[0].pos, "the include command expects a string as script name")
		}
		name := a.pos[0].strs[0]
		if !validScriptName(name) {
			return nil, cerr(a.pos[0].pos, "include: invalid script name '%s'", name)
		}
		cmd.str = &sval{lit: name}
		if c.opts.Include != nil {
			if err := c.checkInclude(cmd, a.pos[0].pos); err != nil {
				return nil, err
			}
		}
	case "global":
		if !c.has("variables") {
			return nil, cerr(n.pos, "unknown command 'global' (only reported once at first occurrence)")
		}
		a, err := c.sortArgs(n, "command", none, 1, 1)
		if err != nil {
			return nil, err
		}
		cmd.kind = cGlobal
		if a.pos[0].kind != aStr {
			return nil, cerr(a.pos[0].pos, "the global command expects a string list of variable names")
		}
		for _, s := range a.pos[0].strs {
			if !validVarName(s, true) {
				return nil, cerr(a.pos[0].pos, "invalid variable name '%s'.", s)
			}
			cmd.strs = append(cmd.strs, &sval{lit: lower(s)})
		}
	default:
		return nil, cerr(n.pos, "unknown command '%s' (only reported once at first occurrence)", n.name)
	}
	return cmd, nil
}

// checkInclude reads an included script at compile time, as sievec does.
func (c *compiler) checkInclude(cmd *command, p pos) error {
	src, err := c.opts.Include(cmd.global, cmd.str.lit)
	if err != nil {
		if cmd.optional && isNotExist(err) {
			return nil
		}
		loc := "personal"
		if cmd.global {
			loc = "global"
		}
		if isNotExist(err) {
			return cerr(p, "included %s script '%s' does not exist", loc, cmd.str.lit)
		}
		return cerr(p, "failed to include %s script '%s': %v", loc, cmd.str.lit, err)
	}
	o := c.opts
	depth := 0
	if o.Name != "" {
		_, _ = fmt.Sscanf(o.Name, "\x00depth%d", &depth)
	}
	if depth > maxIncludeDepth {
		return cerr(p, "cannot nest includes deeper than %d levels", maxIncludeDepth)
	}
	o.Name = fmt.Sprintf("\x00depth%d", depth+1)
	if _, err := Compile(src, o); err != nil {
		return cerr(p, "failed to compile included script '%s': %v", cmd.str.lit, err)
	}
	return nil
}

const maxIncludeDepth = 10

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func (c *compiler) actionFlags(cmd *command, a *args) {
	if !a.has("flags") {
		return
	}
	cmd.flagsGiven = true
	cmd.flags = []*sval{}
	for _, s := range a.param("flags").strs {
		cmd.flags = append(cmd.flags, c.sval(s))
	}
}

// validVarName: an identifier (RFC 5229 §3), or for a variable that may
// be global "global.NAME" (RFC 6609 §3.5).
func validVarName(s string, allowNS bool) bool {
	if strings.HasPrefix(lower(s), "global.") {
		s = s[len("global."):]
	}
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func validScriptName(s string) bool {
	return s != "" && len(s) <= 255 && !strings.ContainsAny(s, "/\x00") && !strings.HasPrefix(s, ".")
}
