// Package filters turns a user's old filters — ~/.procmailrc (and the
// rcfiles it INCLUDERCs inside the home), ~/.forward and vacation(1)
// with ~/.vacation.msg — into one Sieve script (RFC 5228) for the new
// server, ~/sieve/migrated.sieve. Folder names are the ones the copy gave
// the old folders (migrate/convert's rename map).
//
// Implementation notes:
//   - Nothing is dropped silently: a rule that has no faithful Sieve form
//     (a pipe to a program, a condition on a program's exit code, a regex
//     feature Sieve lacks) stays in the script as a comment with its file
//     and line, and is listed in Result.Problems in plain words for the
//     user's confirmation mail, `mailmig status`, an event and the convert
//     report.
//   - procmail's model is kept: the first delivering recipe ends
//     processing (fileinto/redirect/discard then stop), a c-flag recipe
//     delivers a copy (:copy), falling off the end delivers to $DEFAULT
//     (the implicit keep, INBOX, or fileinto when DEFAULT is a folder).
//   - The generated script is judged against Debian's procmail on the same
//     messages (filters_procmail_test.go) and compiled by pigeonhole's
//     sievec.
package filters

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mailmig/migrate/filters/procmailrc"
)

// Options describe the user and the old side.
type Options struct {
	// User is the login name (LOGNAME); Home the old home directory.
	User, Home string
	// Procmailrc, Forward and VacationMsg are the files to read; "" means
	// HOME/.procmailrc, HOME/.forward and HOME/.vacation.msg. A missing
	// file is fine.
	Procmailrc, Forward, VacationMsg string
	// Spool is the old INBOX (procmail's ORGMAIL/DEFAULT): delivering to
	// it is the INBOX.
	Spool string
	// FoldersDir is the old folders directory (~/mail): files below it
	// are folders with the names Folders gives them.
	FoldersDir string
	// Folders maps an old folder file's absolute path to its new name
	// (from the copy's report); nil or a missing entry uses FolderName.
	Folders map[string]string
	// Domain completes bare local names in forwards ("bob" →
	// "bob@Domain").
	Domain string
	// Addresses are the user's own addresses (vacation :addresses).
	Addresses []string
	// GlobalInclude is the global script to include first ("spam" gives
	// `include :global "spam";`); "" includes nothing.
	GlobalInclude string
	// ProcmailAlways: the old MTA ran procmail for every delivery to a
	// user with a ~/.procmailrc (Debian exim4's procmail router, Postfix's
	// mailbox_command). Otherwise only a .forward pipe to procmail does.
	ProcmailAlways bool
	// VacationDays is vacation(1)'s default interval (7 if 0).
	VacationDays int
	// Now stamps the script's header comment (time.Now if nil).
	Now func() time.Time
}

// Problem is a rule that was not converted faithfully.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Text says what the rule did and what happens now, in plain words.
	Text string `json:"text"`
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", p.File, p.Line, p.Text)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Text)
}

// Result is the converted script and what did not convert.
type Result struct {
	// Script is the Sieve script ("" when the user had no filters).
	Script string `json:"-"`
	// Sources are the files read.
	Sources []string `json:"sources,omitempty"`
	// Problems were kept as comments; the user is told about each.
	Problems []Problem `json:"problems,omitempty"`
	// Notes are differences in detail that do not change where mail goes
	// in the usual case (e.g. size limits counted with CRLF line ends).
	Notes []string `json:"notes,omitempty"`
}

// Empty reports whether the user had no filters at all.
func (r *Result) Empty() bool { return r.Script == "" }

// ErrOutsideHome is returned for an INCLUDERC outside the home.
var ErrOutsideHome = errors.New("filters: file outside the home directory")

// Convert reads the user's filter files and converts them.
func Convert(o Options) (*Result, error) {
	if o.Procmailrc == "" && o.Home != "" {
		o.Procmailrc = filepath.Join(o.Home, ".procmailrc")
	}
	if o.Forward == "" && o.Home != "" {
		o.Forward = filepath.Join(o.Home, ".forward")
	}
	if o.VacationMsg == "" && o.Home != "" {
		o.VacationMsg = filepath.Join(o.Home, ".vacation.msg")
	}
	c := newConverter(o)
	fwd, err := readOptional(o.Forward)
	if err != nil {
		return nil, err
	}
	rc, err := readOptional(o.Procmailrc)
	if err != nil {
		return nil, err
	}
	switch {
	case fwd != nil:
		c.res.Sources = append(c.res.Sources, o.Forward)
		if err := c.forward(o.Forward, string(fwd), rc); err != nil {
			return nil, err
		}
	case rc != nil && o.ProcmailAlways:
		if err := c.procmail(o.Procmailrc, rc); err != nil {
			return nil, err
		}
	case rc != nil:
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("%s exists but the old mail system did not run procmail for this user (no .forward pipe, procmail not the site's delivery agent): not converted", o.Procmailrc))
		return c.res, nil
	default:
		return c.res, nil
	}
	c.finish()
	return c.res, nil
}

func readOptional(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("filters: read %s: %w", path, err)
	}
	return b, nil
}

// converter holds the script being written.
type converter struct {
	o        Options
	res      *Result
	requires map[string]bool
	body     strings.Builder
	indent   int
	// endKeep is what happens when the script ends without stop:
	// "" the implicit keep (INBOX), otherwise a fileinto folder.
	endFolder string
	seq       int
	chained   map[*procmailrc.Recipe]bool
}

func newConverter(o Options) *converter {
	return &converter{o: o, res: &Result{}, requires: map[string]bool{}, chained: map[*procmailrc.Recipe]bool{}}
}

func (c *converter) require(ext ...string) {
	for _, e := range ext {
		c.requires[e] = true
	}
}

func (c *converter) line(f string, a ...any) {
	c.body.WriteString(strings.Repeat("  ", c.indent))
	fmt.Fprintf(&c.body, f, a...)
	c.body.WriteString("\n")
}

func (c *converter) problem(file string, line int, f string, a ...any) {
	p := Problem{File: file, Line: line, Text: fmt.Sprintf(f, a...)}
	c.res.Problems = append(c.res.Problems, p)
}

func (c *converter) note(f string, a ...any) {
	n := fmt.Sprintf(f, a...)
	for _, x := range c.res.Notes {
		if x == n {
			return
		}
	}
	c.res.Notes = append(c.res.Notes, n)
}

// comment writes text as Sieve comment lines.
func (c *converter) comment(text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		c.line("# %s", strings.ReplaceAll(l, "\r", ""))
	}
}

// finish assembles the script.
func (c *converter) finish() {
	if c.endFolder != "" {
		c.line("# procmail's DEFAULT: mail no rule delivered")
		c.require("fileinto", "mailbox")
		c.line("fileinto :create %s;", quote(c.endFolder))
	}
	var b strings.Builder
	now := time.Now
	if c.o.Now != nil {
		now = c.o.Now
	}
	fmt.Fprintf(&b, "# Converted by mailmig from %s on %s.\n", strings.Join(c.res.Sources, ", "), now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("# Rules that could not be converted are kept below as comments (\"NOT CONVERTED\").\n")
	if c.o.GlobalInclude != "" {
		c.require("include")
	}
	if len(c.requires) > 0 {
		var exts []string
		for e := range c.requires {
			exts = append(exts, e)
		}
		sort.Strings(exts)
		b.WriteString("require [")
		for i, e := range exts {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(e))
		}
		b.WriteString("];\n")
	}
	if c.o.GlobalInclude != "" {
		fmt.Fprintf(&b, "# The site's spam rule, as before the move.\ninclude :global %s;\n", quote(c.o.GlobalInclude))
	}
	b.WriteString("\n")
	b.WriteString(c.body.String())
	c.res.Script = b.String()
}

// quote makes a Sieve quoted string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// quoteList makes a Sieve string list.
func quoteList(l []string) string {
	if len(l) == 1 {
		return quote(l[0])
	}
	var parts []string
	for _, s := range l {
		parts = append(parts, quote(s))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// FolderName is the name the copy gives a path below the folders
// directory that did not exist when it ran (migrate/convert's rules:
// '.' and wildcards become '_', '.gz' is dropped).
func FolderName(rel string) string {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i, p := range parts {
		if i == len(parts)-1 && strings.HasSuffix(p, ".gz") && len(p) > 3 {
			p = strings.TrimSuffix(p, ".gz")
		}
		var b strings.Builder
		for _, r := range p {
			switch {
			case r == '.' || r == '*' || r == '%' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
				b.WriteByte('_')
			default:
				b.WriteRune(r)
			}
		}
		parts[i] = b.String()
	}
	name := strings.Join(parts, "/")
	if strings.EqualFold(name, "INBOX") {
		return "INBOX_2"
	}
	return name
}
