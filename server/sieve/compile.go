// Package sieve owns mailmig's Sieve scripts (RFC 5228): the single list of
// enabled extensions (used by the interpreter and by ManageSieve's SIEVE
// capability, RFC 5804 §1.7), compilation and validation with line/column
// errors, running a compiled script against a message (Execute, used by
// server/delivery), and dovecot-style script storage: ~/sieve/NAME.sieve
// with the active script linked from ~/.dovecot.sieve (Storage).
//
// The interpreter is github.com/migadu/go-sieve. It has no reject/ereject
// (RFC 5429), so Compile rewrites them: `require` loses "reject"/"ereject"
// (remembered), and each `reject TEXT` becomes a redirect to an internal
// marker address carrying TEXT, which the run-time policy turns back into
// a rejection and never into a real redirect. Likewise each vacation
// command gets its :addresses, :handle and whether :subject was given
// packed into its :handle, since go-sieve reports only the handle.
//
// Implementation notes:
//   - Compiled scripts are immutable and safe for concurrent Execute.
//   - Every script is compiled twice: as written, and without vacation
//     commands for messages with a null envelope sender (go-sieve's
//     vacation fails on those, and RFC 5230 §4.5 never answers them).
package sieve

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	gosieve "github.com/migadu/go-sieve"
	"github.com/migadu/go-sieve/interp"
	"github.com/migadu/go-sieve/lexer"
	"github.com/migadu/go-sieve/parser"
)

// extensions is the one list of enabled extensions, in capability order.
var extensions = []string{
	"fileinto", "reject", "ereject", "envelope", "encoded-character",
	"comparator-i;octet", "comparator-i;ascii-casemap",
	"comparator-i;ascii-numeric", "comparator-i;unicode-casemap",
	"imap4flags", "variables", "relational", "vacation", "copy", "regex",
	"date", "index", "editheader", "mailbox", "subaddress", "body",
}

// Extensions returns the enabled Sieve extensions (a fresh slice), for the
// interpreter and for ManageSieve's "SIEVE" capability.
func Extensions() []string { return slices.Clone(extensions) }

// Capability returns Extensions joined by spaces, as ManageSieve's SIEVE
// capability value.
func Capability() string { return strings.Join(extensions, " ") }

// Internal markers; they start with NUL, which no script text can contain
// (the lexer refuses NUL), so a script cannot forge them.
const (
	rejectMarker   = "\x00mailmig-reject\x00"
	erejectMarker  = "\x00mailmig-ereject\x00"
	vacationMarker = "\x00mailmig-vacation\x00"
	fieldSep       = "\x00"
	flagsMarker    = "\x00mailmig-flags\x00" // fileinto :flags (see actionFlags)
	keepMarker     = "\x00mailmig-keep\x00"  // keep :flags
	flagSep        = "\x01"
)

// ScriptError is a compile error with its position (1-based; 0 when the
// library did not say).
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

// Script is a compiled Sieve script.
type Script struct {
	prog       *gosieve.Script // as written
	progNoVac  *gosieve.Script // vacation commands removed
	hasReject  bool
	extensions []string
}

// Requires returns the extensions the script requires.
func (s *Script) Requires() []string { return slices.Clone(s.extensions) }

// Options tune compilation; the zero value means the library defaults.
type Options struct {
	// MaxRedirects bounds redirect actions per run (0 = 5).
	MaxRedirects int
}

// Compile compiles src with the enabled extensions. Errors are
// *ScriptError with the position of the fault.
func Compile(src []byte, o Options) (*Script, error) {
	opts := gosieve.DefaultOptions()
	opts.EnabledExtensions = extensions
	if o.MaxRedirects > 0 {
		opts.Interp.MaxRedirects = o.MaxRedirects
	}
	toks, err := lexer.Lex(bytes.NewReader(src), &opts.Lexer)
	if err != nil {
		return nil, lexError(src, err)
	}
	unstuffFirstLines(src, toks)
	cmds, err := parser.Parse(lexer.NewStream(toks), &opts.Parser)
	if err != nil {
		return nil, toScriptError(err)
	}
	rw := &rewriter{}
	full, err := rw.block(cmds, false)
	if err != nil {
		return nil, err
	}
	full = rw.withFileinto(full)
	s := &Script{hasReject: rw.reject || rw.ereject, extensions: rw.required}
	if s.prog, err = interp.LoadScript(full, &opts.Interp, opts.EnabledExtensions); err != nil {
		return nil, toScriptError(err)
	}
	rw2 := &rewriter{}
	noVac, err := rw2.block(cmds, true)
	if err != nil {
		return nil, err
	}
	noVac = rw2.withFileinto(noVac)
	if s.progNoVac, err = interp.LoadScript(noVac, &opts.Interp, opts.EnabledExtensions); err != nil {
		return nil, toScriptError(err)
	}
	return s, nil
}

// withFileinto loads the library's fileinto when a keep :flags became a
// fileinto in a script that did not require it.
func (rw *rewriter) withFileinto(cmds []parser.Cmd) []parser.Cmd {
	if !rw.keepFlags || slices.Contains(rw.required, "fileinto") {
		return cmds
	}
	req := parser.Cmd{Id: "require", Args: []parser.Arg{parser.StringArg{Value: "fileinto"}}}
	return append([]parser.Cmd{req}, cmds...)
}

// unstuffFirstLines removes the stuffed dot of the first line of each
// "text:" string (RFC 5228 §2.4.2: "..x" stands for ".x"), which
// go-sieve's lexer unstuffs on every line but the first.
func unstuffFirstLines(src []byte, toks []lexer.Token) {
	lines := bytes.Split(src, []byte("\n"))
	for i, tk := range toks {
		str, ok := tk.(lexer.String)
		if !ok || str.Line < 1 || str.Line >= len(lines) {
			continue
		}
		line := lines[str.Line-1]
		c := str.Col - 1
		if c < 0 || c >= len(line) {
			continue
		}
		at := bytes.Index(line[max(c-1, 0):], []byte("text:"))
		if at < 0 || at > 1 {
			continue // not a multi-line string
		}
		first := lines[str.Line] // the line after "text:" (and its comment)
		if bytes.HasPrefix(first, []byte("..")) && strings.HasPrefix(str.Text, "..") {
			str.Text = str.Text[1:]
			toks[i] = str
		}
	}
}

// Validate compiles src and returns the first error (a *ScriptError).
func Validate(src []byte) error {
	_, err := Compile(src, Options{})
	return err
}

var posRE = regexp.MustCompile(`^(?:[^:]*:)?(\d+):(\d+): (.*)$`)

func toScriptError(err error) error {
	var se *ScriptError
	if errors.As(err, &se) {
		return err
	}
	msg := err.Error()
	if m := posRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		return &ScriptError{Line: line, Col: col, Msg: cleanMsg(m[3])}
	}
	return &ScriptError{Msg: cleanMsg(msg)}
}

func cleanMsg(s string) string {
	for _, p := range []string{"LoadBlock: ", "LoadTest: ", "LoadSpec: ", "loadRequire: ", "go-sieve/lexer: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

// lexError locates a lexer error (the library gives none): the fault is on
// the line after the longest prefix of whole lines that still lexes.
func lexError(src []byte, err error) error {
	lines := bytes.SplitAfter(src, []byte("\n"))
	line := 0
	if len(lines) <= 5000 {
		opts := gosieve.DefaultOptions().Lexer
		for k := len(lines) - 1; k >= 0; k-- {
			if _, e := lexer.Lex(bytes.NewReader(bytes.Join(lines[:k], nil)), &opts); e == nil {
				line = k + 1
				break
			}
		}
	}
	col := 0
	if line > 0 {
		col = 1
		// The column: the shortest prefix of the bad line that fails
		// with the same error.
		if bad := lines[line-1]; len(bad) <= 2000 && len(src) <= 256<<10 {
			opts := gosieve.DefaultOptions().Lexer
			head := bytes.Join(lines[:line-1], nil)
			for k := 1; k <= len(bad); k++ {
				_, e := lexer.Lex(bytes.NewReader(append(head[:len(head):len(head)], bad[:k]...)), &opts)
				if e != nil && e.Error() == err.Error() {
					col = utf8.RuneCount(bad[:k])
					break
				}
			}
		}
	}
	return &ScriptError{Line: line, Col: col, Msg: cleanMsg(err.Error())}
}

// rewriter turns reject/ereject into marker redirects and annotates
// vacation commands (see the package comment).
type rewriter struct {
	reject, ereject bool
	required        []string
	// keepFlags: a "keep :flags" became a fileinto, which needs the
	// library's fileinto loaded.
	keepFlags bool
}

func (rw *rewriter) block(cmds []parser.Cmd, dropVacation bool) ([]parser.Cmd, error) {
	out := make([]parser.Cmd, 0, len(cmds))
	for _, c := range cmds {
		switch strings.ToLower(c.Id) {
		case "require":
			nc, keep, err := rw.require(c)
			if err != nil {
				return nil, err
			}
			if keep {
				out = append(out, nc)
			}
			continue
		case "reject", "ereject":
			nc, err := rw.rejectCmd(c)
			if err != nil {
				return nil, err
			}
			out = append(out, nc)
			continue
		case "vacation":
			if dropVacation {
				continue
			}
			out = append(out, annotateVacation(c))
			continue
		case "fileinto", "keep":
			nc, err := rw.actionFlags(c)
			if err != nil {
				return nil, err
			}
			c = nc
		}
		c.Args = caseInsensitiveRegex(c.Id, c.Args)
		c.Tests = rw.tests(c.Tests)
		if len(c.Block) > 0 {
			b, err := rw.block(c.Block, dropVacation)
			if err != nil {
				return nil, err
			}
			c.Block = b
		}
		out = append(out, c)
	}
	return out, nil
}

// actionFlags moves the :flags of a fileinto or keep into the action's
// mailbox name (flagsMarker, the flags, NUL, the mailbox), so that each
// copy gets its own flags (RFC 5232 §5): go-sieve applies :flags to the
// one flag variable of the whole message. A keep with :flags becomes a
// fileinto of INBOX with keepMarker. Execute unpacks both.
func (rw *rewriter) actionFlags(c parser.Cmd) (parser.Cmd, error) {
	var flags []string
	found := false
	args := make([]parser.Arg, 0, len(c.Args))
	for i := 0; i < len(c.Args); i++ {
		if tag, ok := c.Args[i].(parser.TagArg); ok && strings.EqualFold(tag.Value, "flags") && i+1 < len(c.Args) {
			flags = append(flags, argStrings(c.Args[i+1])...)
			found = true
			i++
			continue
		}
		args = append(args, c.Args[i])
	}
	if !found {
		return c, nil
	}
	if !slices.Contains(rw.required, "imap4flags") {
		return c, &ScriptError{Line: c.Line, Col: c.Col, Msg: ":flags needs require \"imap4flags\""}
	}
	packed := strings.Join(flags, flagSep) + fieldSep
	if strings.EqualFold(c.Id, "keep") {
		rw.keepFlags = true
		c.Id = "fileinto"
		c.Args = append(args, parser.StringArg{Value: keepMarker + packed + "INBOX", Position: c.Position})
		return c, nil
	}
	// The mailbox is the last string argument.
	for i := len(args) - 1; i >= 0; i-- {
		if a, ok := args[i].(parser.StringArg); ok {
			a.Value = flagsMarker + packed + a.Value
			args[i] = a
			break
		}
	}
	c.Args = args
	return c, nil
}

func (rw *rewriter) tests(ts []parser.Test) []parser.Test {
	if len(ts) == 0 {
		return ts
	}
	out := make([]parser.Test, len(ts))
	for i, t := range ts {
		t.Args = caseInsensitiveRegex(t.Id, t.Args)
		t.Tests = rw.tests(t.Tests)
		out[i] = t
	}
	return out
}

// caseInsensitiveRegex works around go-sieve's :regex under the default
// i;ascii-casemap comparator, which lower-cases the value but not the
// pattern (so "^Re:" never matched) and hands back lower-cased
// ${1}... captures (pigeonhole keeps the case: "Tag/${1}" on "[Work]"
// files into Tag/Work). The test is rewritten to compare with i;octet
// and the key patterns get "(?i)": the same matches, captures as written.
func caseInsensitiveRegex(id string, args []parser.Arg) []parser.Arg {
	regex, octet := false, false
	comparator := -1
	var positional []int
	for i := 0; i < len(args); i++ {
		switch a := args[i].(type) {
		case parser.TagArg:
			switch strings.ToLower(a.Value) {
			case "regex":
				regex = true
			case "comparator":
				if i+1 < len(args) {
					if c := argStrings(args[i+1]); len(c) == 1 && c[0] == "i;octet" {
						octet = true
					}
					comparator = i + 1
					i++
				}
			}
		case parser.StringArg, parser.StringListArg:
			positional = append(positional, i)
		}
	}
	if !regex || octet || len(positional) == 0 {
		return args
	}
	if strings.EqualFold(id, "deleteheader") && len(positional) < 2 {
		return args // only a field name, no value patterns
	}
	out := slices.Clone(args)
	last := positional[len(positional)-1]
	switch a := out[last].(type) {
	case parser.StringArg:
		a.Value = "(?i)" + a.Value
		out[last] = a
	case parser.StringListArg:
		v := make([]string, len(a.Value))
		for i, s := range a.Value {
			v[i] = "(?i)" + s
		}
		a.Value = v
		out[last] = a
	}
	if comparator >= 0 {
		out[comparator] = parser.StringArg{Value: "i;octet"}
	} else {
		out = append([]parser.Arg{parser.TagArg{Value: "comparator"}, parser.StringArg{Value: "i;octet"}}, out...)
	}
	return out
}

func (rw *rewriter) require(c parser.Cmd) (parser.Cmd, bool, error) {
	if len(c.Args) != 1 {
		return c, true, nil // let the library report it
	}
	var names []string
	switch a := c.Args[0].(type) {
	case parser.StringArg:
		names = []string{a.Value}
	case parser.StringListArg:
		names = a.Value
	default:
		return c, true, nil
	}
	var rest []string
	for _, n := range names {
		if !slices.Contains(extensions, n) {
			return c, false, &ScriptError{Line: c.Line, Col: c.Col, Msg: fmt.Sprintf("unsupported extension %q", n)}
		}
		if !slices.Contains(rw.required, n) {
			rw.required = append(rw.required, n)
		}
		switch n {
		case "reject":
			rw.reject = true
		case "ereject":
			rw.ereject = true
		default:
			rest = append(rest, n)
		}
	}
	if len(rest) == 0 {
		return c, false, nil
	}
	c.Args = []parser.Arg{parser.StringListArg{Value: rest, Position: c.Position}}
	return c, true, nil
}

func (rw *rewriter) rejectCmd(c parser.Cmd) (parser.Cmd, error) {
	id := strings.ToLower(c.Id)
	if (id == "reject" && !rw.reject) || (id == "ereject" && !rw.ereject) {
		return c, &ScriptError{Line: c.Line, Col: c.Col, Msg: fmt.Sprintf("missing require %q", id)}
	}
	if len(c.Args) != 1 || len(c.Tests) != 0 || len(c.Block) != 0 {
		return c, &ScriptError{Line: c.Line, Col: c.Col, Msg: id + " takes exactly one string argument"}
	}
	a, ok := c.Args[0].(parser.StringArg)
	if !ok {
		if l, isList := c.Args[0].(parser.StringListArg); isList && len(l.Value) == 1 {
			a = parser.StringArg{Value: l.Value[0], Position: l.Position}
		} else {
			return c, &ScriptError{Line: c.Line, Col: c.Col, Msg: id + " takes exactly one string argument"}
		}
	}
	marker := rejectMarker
	if id == "ereject" {
		marker = erejectMarker
	}
	return parser.Cmd{
		Position: c.Position,
		Id:       "redirect",
		Args:     []parser.Arg{parser.StringArg{Value: marker + a.Value, Position: a.Position}},
	}, nil
}

// annotateVacation packs :handle, :addresses and whether :subject and
// :days were given into the :handle argument: marker, two flags ("0"/"1"
// for subject, days), handle, then the addresses, separated by NUL.
func annotateVacation(c parser.Cmd) parser.Cmd {
	handle := ""
	subject, days := "0", "0"
	var addrs []string
	var args []parser.Arg
	for i := 0; i < len(c.Args); i++ {
		tag, ok := c.Args[i].(parser.TagArg)
		if !ok || i+1 >= len(c.Args) {
			args = append(args, c.Args[i])
			continue
		}
		switch strings.ToLower(tag.Value) {
		case "handle":
			handle = strings.Join(argStrings(c.Args[i+1]), "")
			i++
			continue
		case "subject":
			subject = "1"
		case "days":
			days = "1"
		case "addresses":
			addrs = argStrings(c.Args[i+1])
		}
		args = append(args, c.Args[i])
	}
	packed := vacationMarker + subject + days + fieldSep + handle
	for _, a := range addrs {
		packed += fieldSep + a
	}
	args = append([]parser.Arg{
		parser.TagArg{Value: "handle", Position: c.Position},
		parser.StringArg{Value: packed, Position: c.Position},
	}, args...)
	c.Args = args
	return c
}

func argStrings(a parser.Arg) []string {
	switch v := a.(type) {
	case parser.StringArg:
		return []string{v.Value}
	case parser.StringListArg:
		return v.Value
	}
	return nil
}
