package filters

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"mailmig/migrate/filters/procmailrc"
	"mailmig/server/delivery"
)

// rcState is the conversion state of one procmail run.
type rcState struct {
	env env
	// fields are variables holding `formail -xField:` (var → field).
	fields   map[string]string
	includes int
	switched bool
}

// level is one block-nesting level's recipe history (for A, a, E, e).
type level struct {
	file string
	// lastPlain is the variable of the last recipe without A/a (its
	// "conditions matched"); "" when it could not be converted.
	lastPlain    string
	lastPlainOK  bool
	lastPlainSet bool
	// prev is the immediately preceding recipe's variable; chain the
	// variables of the recipes of the current E chain.
	prev    *recipeInfo
	chain   []string
	chainOK bool
	// clone is the variable a c-flag block's clone sets when it has
	// delivered ("" outside such blocks).
	clone string
}

type recipeInfo struct {
	varName   string // set to "1" when the recipe was executed
	converted bool
	line      int
	vacation  bool // a formail -D vacation cache check (see vacationIdiom)
	r         *procmailrc.Recipe
}

func (c *converter) procmail(path string, text []byte) error {
	c.res.Sources = append(c.res.Sources, path)
	st := &rcState{env: c.initialEnv(), fields: map[string]string{}}
	f, err := procmailrc.Parse(path, string(text))
	if err != nil {
		// The whole file is kept as a comment: procmail itself would have
		// stopped at the error too, but whatever came before it ran.
		c.problem(path, lineOf(err), "the file could not be read as a procmail rcfile (%v); none of its rules were converted and your mail goes to your INBOX", errText(err))
		c.line("# NOT CONVERTED: %s could not be parsed: %s", path, errText(err))
		c.comment(string(text))
		return nil
	}
	c.items(st, &level{file: path, chainOK: true}, f.Items)
	return nil
}

func lineOf(err error) int {
	if e, ok := err.(*procmailrc.Error); ok {
		return e.Line
	}
	return 0
}

func errText(err error) string {
	if e, ok := err.(*procmailrc.Error); ok {
		return e.Msg
	}
	return err.Error()
}

func (c *converter) initialEnv() env {
	e := env{}
	e.set("HOME", c.o.Home)
	e.set("LOGNAME", c.o.User)
	e.set("USER", c.o.User)
	e.set("SHELL", "/bin/sh")
	e.set("MAILDIR", c.o.Home)
	e.set("ORGMAIL", c.o.Spool)
	e.set("DEFAULT", c.o.Spool)
	e.set("SENDMAIL", "/usr/sbin/sendmail")
	e.set("SENDMAILFLAGS", "-oi")
	e.set("LOCKEXT", ".lock")
	e.set("MSGPREFIX", "msg.")
	e.set("SHELLMETAS", "&|<>~;?*[")
	e.set("PATH", c.o.Home+"/bin:/usr/local/bin:/usr/bin:/bin")
	e.unknown("HOST")
	e.unknown("MATCH")
	e.unknown("LASTFOLDER")
	return e
}

func (c *converter) items(st *rcState, lv *level, items []procmailrc.Item) {
	c.markChains(items)
	for i := 0; i < len(items) && !st.switched; i++ {
		switch it := items[i].(type) {
		case *procmailrc.Assignment:
			c.assign(st, lv, it)
		case *procmailrc.Recipe:
			var next *procmailrc.Recipe
			if i+1 < len(items) {
				next, _ = items[i+1].(*procmailrc.Recipe)
			}
			if next != nil && c.vacationIdiom(st, lv, it, next) {
				i++
				continue
			}
			c.recipe(st, lv, it)
		}
	}
}

func (c *converter) assign(st *rcState, lv *level, a *procmailrc.Assignment) {
	if a.Unset {
		delete(st.env, a.Name)
		if a.Name == "SWITCHRC" {
			st.switched = true
		}
		return
	}
	delete(st.fields, a.Name)
	if m := formailXRE.FindStringSubmatch(strings.TrimSpace(a.Value)); m != nil {
		st.env.unknown(a.Name)
		st.fields[a.Name] = m[1]
		return
	}
	v, unk, prog := expand(a.Value, st.env, false)
	switch a.Name {
	case "INCLUDERC", "SWITCHRC":
		if prog || unk != "" {
			c.problem(lv.file, a.Line, "%s names a file only known when mail arrives; the rules in it were not converted", a.Name)
			c.line("# NOT CONVERTED (%s line %d): %s=%s", filepath.Base(lv.file), a.Line, a.Name, a.Value)
			return
		}
		c.include(st, lv, a, v)
		if a.Name == "SWITCHRC" {
			st.switched = true
		}
		return
	case "DEFAULT":
		if !prog && unk == "" {
			st.env.set(a.Name, v)
			c.setDefault(lv, a.Line, st, v)
			return
		}
	case "HOST":
		c.note("%s line %d sets HOST; procmail stopped reading the file on a host of another name; mailmig assumes this was the host", filepath.Base(lv.file), a.Line)
	case "TRAP":
		if strings.TrimSpace(v) != "" || prog {
			c.problem(lv.file, a.Line, "TRAP ran %q when procmail ended; it does not run on the new server", short(a.Value))
			c.line("# NOT CONVERTED (%s line %d): TRAP=%s", filepath.Base(lv.file), a.Line, a.Value)
			st.env.set(a.Name, v)
			return
		}
	}
	if prog {
		c.problem(lv.file, a.Line, "your rcfile ran the program %q when mail arrived (to set $%s); it does not run on the new server", short(a.Value), a.Name)
		c.line("# NOT CONVERTED (%s line %d): %s=%s", filepath.Base(lv.file), a.Line, a.Name, a.Value)
	}
	if prog || unk != "" {
		st.env.unknown(a.Name)
		if a.Name == "MAILDIR" || a.Name == "DEFAULT" {
			c.problem(lv.file, a.Line, "%s is set from a program or an unknown variable; folders after this line could not be converted", a.Name)
		}
		return
	}
	st.env.set(a.Name, v)
}

func (c *converter) setDefault(lv *level, line int, st *rcState, v string) {
	if v == "" {
		return
	}
	name, kind, why := c.folder(st, v)
	switch kind {
	case destInbox:
		c.endFolder = ""
	case destFolder:
		c.endFolder = name
	default:
		c.problem(lv.file, line, "DEFAULT=%s: %s; mail no rule delivers goes to your INBOX", v, why)
	}
}

// include converts an INCLUDERC (or SWITCHRC) in place.
func (c *converter) include(st *rcState, lv *level, a *procmailrc.Assignment, name string) {
	if name == "" {
		return
	}
	maildir, _ := st.env.get("MAILDIR")
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(maildir, p)
	}
	p = filepath.Clean(p)
	if !c.insideHome(p) {
		c.problem(lv.file, a.Line, "%s=%s is outside your home directory; its rules were not converted", a.Name, name)
		c.line("# NOT CONVERTED (%s line %d): %s=%s (outside the home directory)", filepath.Base(lv.file), a.Line, a.Name, name)
		return
	}
	if st.includes++; st.includes > 20 {
		c.problem(lv.file, a.Line, "%s=%s: too many included files (a loop?); not converted", a.Name, name)
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		c.problem(lv.file, a.Line, "%s=%s could not be read (%v); procmail skipped it too", a.Name, name, err)
		return
	}
	f, err := procmailrc.Parse(p, string(b))
	if err != nil {
		c.problem(p, lineOf(err), "the included file could not be read as a procmail rcfile (%s); its rules were not converted", errText(err))
		c.line("# NOT CONVERTED: %s could not be parsed", p)
		return
	}
	c.res.Sources = append(c.res.Sources, p)
	c.line("# %s line %d: %s=%s", filepath.Base(lv.file), a.Line, a.Name, name)
	sub := &level{file: p, chainOK: true, clone: lv.clone}
	c.items(st, sub, f.Items)
}

func (c *converter) insideHome(p string) bool {
	home := c.o.Home
	if home == "" {
		return false
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	if r, err := filepath.EvalSymlinks(home); err == nil {
		home = r
	}
	rel, err := filepath.Rel(home, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// destination kinds
const (
	destInbox = iota
	destFolder
	destDiscard
	destBad
)

// folder maps a procmail mailbox name to a folder of the new store.
func (c *converter) folder(st *rcState, mbox string) (name string, kind int, why string) {
	if mbox == "/dev/null" {
		return "", destDiscard, ""
	}
	maildir, ok := st.env.get("MAILDIR")
	if !ok {
		return "", destBad, "the folder is relative to a MAILDIR that is only known when mail arrives"
	}
	p := mbox
	if !filepath.IsAbs(p) {
		p = filepath.Join(maildir, p)
	}
	p = strings.TrimSuffix(p, "/.")
	p = filepath.Clean(p)
	if c.o.Spool != "" && p == filepath.Clean(c.o.Spool) {
		return "INBOX", destInbox, ""
	}
	if n, ok := c.o.Folders[p]; ok {
		return n, destFolder, ""
	}
	if c.o.FoldersDir != "" {
		if rel, err := filepath.Rel(c.o.FoldersDir, p); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			return FolderName(rel), destFolder, ""
		}
	}
	if c.o.Home != "" {
		if rel, err := filepath.Rel(c.o.Home, p); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			c.note("the folder %s is in your home directory but not among your mail folders (%s); on the new server it is the folder %q", p, c.o.FoldersDir, FolderName(rel))
			return FolderName(rel), destFolder, ""
		}
	}
	return "", destBad, fmt.Sprintf("%s is outside your home directory", p)
}

// recipe converts one recipe.
func (c *converter) recipe(st *rcState, lv *level, r *procmailrc.Recipe) {
	c.seq++
	info := &recipeInfo{varName: fmt.Sprintf("pm%d", c.seq), line: r.Line, r: r}
	base := filepath.Base(lv.file)
	header := fmt.Sprintf("%s line %d", base, r.Line)
	fail := func(f string, a ...any) {
		msg := fmt.Sprintf(f, a...)
		c.problem(lv.file, r.Line, "%s", msg)
		c.line("# NOT CONVERTED (%s): %s", header, msg)
		c.commentRecipe(r)
		c.afterRecipe(lv, info)
	}

	guard, err := c.guard(st, lv, r)
	if err != "" {
		fail("%s", err)
		return
	}
	delivering := !r.Has('c') && !r.Has('f') && r.Action.Kind != procmailrc.ActBlock && !(r.Action.Kind == procmailrc.ActPipe && r.Action.Var != "")
	copyFlag := r.Has('c') || lv.clone != ""

	var body []string
	switch r.Action.Kind {
	case procmailrc.ActFolder:
		if r.Has('h') != r.Has('b') && !r.Has('c') {
			fail("the rule delivered only the %s of the message; that has no Sieve form", map[bool]string{true: "header", false: "body"}[r.Has('h')])
			return
		}
		text, unk, prog := expand(r.Action.Text, st.env, false)
		if prog || unk != "" {
			fail("the folder name %q depends on %s, only known when mail arrives", r.Action.Text, unkWhat(unk, prog))
			return
		}
		words := strings.Fields(text)
		if len(words) == 0 {
			fail("empty folder name")
			return
		}
		if len(words) > 1 {
			for _, w := range words {
				if !strings.HasSuffix(w, "/") && !strings.HasSuffix(w, "/.") {
					words = []string{text}
					break
				}
			}
		}
		for _, w := range words {
			name, kind, why := c.folder(st, w)
			switch kind {
			case destBad:
				fail("it filed into %s: %s", w, why)
				return
			case destDiscard:
				if copyFlag {
					body = append(body, "# a copy to /dev/null: nothing to do")
				} else {
					body = append(body, "discard;")
				}
			default:
				c.require("fileinto", "mailbox")
				if copyFlag {
					c.require("copy")
					body = append(body, fmt.Sprintf("fileinto :copy :create %s;", quote(name)))
				} else {
					body = append(body, fmt.Sprintf("fileinto :create %s;", quote(name)))
				}
			}
		}
	case procmailrc.ActForward:
		text, unk, prog := expand(r.Action.Text, st.env, false)
		if prog || unk != "" {
			fail("the forwarding address depends on %s, only known when mail arrives", unkWhat(unk, prog))
			return
		}
		var addrs []string
		for _, w := range strings.Fields(text) {
			if strings.HasPrefix(w, "-") {
				continue
			}
			a, err := c.address(w)
			if err != nil {
				fail("it forwarded to %q, which is not a valid address", w)
				return
			}
			addrs = append(addrs, a)
		}
		if len(addrs) == 0 {
			fail("it forwarded to no address")
			return
		}
		if copyFlag {
			c.require("copy")
		}
		for _, a := range addrs {
			if copyFlag {
				body = append(body, fmt.Sprintf("redirect :copy %s;", quote(a)))
			} else {
				body = append(body, fmt.Sprintf("redirect %s;", quote(a)))
			}
		}
		if len(addrs) > 5 {
			c.note("%s forwards to %d addresses; the new server forwards a message to at most 5", header, len(addrs))
		}
	case procmailrc.ActPipe:
		lines, why := c.pipe(st, lv, r)
		if why != "" {
			fail("%s", why)
			return
		}
		body = lines
		delivering = delivering && !r.Has('f')
	case procmailrc.ActBlock:
		// converted below
	}

	if r.Action.Kind == procmailrc.ActBlock && r.Has('c') && lv.clone == "" && !deliversAtEnd(r.Action.Block) {
		fail("a copy of the message went through the block and then on through the rest of the file (the block does not end with a delivering rule): no faithful Sieve form")
		return
	}
	c.line("# %s: :0%s%s", header, r.Flags, lockText(r))
	cond := guard
	if lv.clone != "" {
		cond = allof(fmt.Sprintf("string :is \"${%s}\" \"\"", lv.clone), cond)
		c.require("variables")
	}
	open := cond != "true"
	if open {
		c.line("if %s {", cond)
		c.indent++
	}
	if c.chained[r] {
		c.line("set %s \"1\";", quote(info.varName))
	}
	if r.Action.Kind == procmailrc.ActBlock {
		sub := &level{file: lv.file, chainOK: true, clone: lv.clone}
		if r.Has('c') && lv.clone == "" {
			c.seq++
			sub.clone = fmt.Sprintf("clone%d", c.seq)
			c.require("variables")
		}
		saved := st.env.clone()
		c.items(st, sub, r.Action.Block)
		if len(r.Conds) > 0 || r.Has('A') || r.Has('a') || r.Has('E') || sub.clone != "" {
			// Assignments in a conditional block are unknown afterwards.
			for k, v := range st.env {
				if old, ok := saved[k]; !ok || old == nil || v == nil || *old != *v {
					st.env.unknown(k)
				}
			}
			for k := range saved {
				if _, ok := st.env[k]; !ok {
					st.env.unknown(k)
				}
			}
		}
	} else {
		for _, b := range body {
			c.line("%s", b)
		}
		if lv.clone != "" && delivering {
			c.line("set %s \"1\";", quote(lv.clone))
		} else if delivering && !r.Has('c') {
			c.line("stop;")
		}
	}
	if open {
		c.indent--
		c.line("}")
	}
	info.converted = true
	c.afterRecipe(lv, info)
}

func lockText(r *procmailrc.Recipe) string {
	if !r.Lock {
		return ""
	}
	return ":" + r.LockFile
}

func unkWhat(unk string, prog bool) string {
	if prog {
		return "a program's output"
	}
	return "$" + strings.TrimPrefix(unk, "$")
}

// deliversAtEnd reports whether a block always delivers at its end: its
// last item is an unconditional delivering recipe.
func deliversAtEnd(items []procmailrc.Item) bool {
	for i := len(items) - 1; i >= 0; i-- {
		r, ok := items[i].(*procmailrc.Recipe)
		if !ok {
			continue
		}
		return len(r.Conds) == 0 && !r.Has('c') && !r.Has('f') && !r.Has('A') && !r.Has('a') && !r.Has('E') && !r.Has('e') &&
			(r.Action.Kind == procmailrc.ActFolder || r.Action.Kind == procmailrc.ActForward)
	}
	return false
}

func (c *converter) commentRecipe(r *procmailrc.Recipe) {
	c.line("#   :0%s%s", r.Flags, lockText(r))
	for _, cd := range r.Conds {
		c.line("#   * %s", cd.Text)
	}
	switch r.Action.Kind {
	case procmailrc.ActForward:
		c.line("#   ! %s", r.Action.Text)
	case procmailrc.ActPipe:
		if r.Action.Var != "" {
			c.line("#   %s=| %s", r.Action.Var, r.Action.Text)
		} else {
			c.line("#   | %s", r.Action.Text)
		}
	case procmailrc.ActBlock:
		c.line("#   { ... } (%d rules inside)", len(r.Action.Block))
	default:
		c.line("#   %s", r.Action.Text)
	}
}

// markChains records the recipes of items that a later A, a or E recipe
// of the same level refers to: they record that they ran in a variable.
func (c *converter) markChains(items []procmailrc.Item) {
	var lastPlain *procmailrc.Recipe
	var chain []*procmailrc.Recipe
	for _, it := range items {
		r, ok := it.(*procmailrc.Recipe)
		if !ok {
			continue
		}
		if (r.Has('A') || r.Has('a')) && lastPlain != nil {
			c.chained[lastPlain] = true
		}
		if r.Has('E') {
			for _, p := range chain {
				c.chained[p] = true
			}
			chain = append(chain, r)
		} else {
			chain = []*procmailrc.Recipe{r}
		}
		if !r.Has('A') && !r.Has('a') {
			lastPlain = r
		}
	}
}

func (c *converter) afterRecipe(lv *level, info *recipeInfo) {
	r := info.r
	if !r.Has('A') && !r.Has('a') {
		lv.lastPlain = info.varName
		lv.lastPlainOK = info.converted
		lv.lastPlainSet = true
	}
	if r.Has('E') {
		lv.chain = append(lv.chain, info.varName)
		lv.chainOK = lv.chainOK && info.converted
	} else {
		lv.chain = []string{info.varName}
		lv.chainOK = info.converted
	}
	lv.prev = info
}

// guard is the Sieve test under which the recipe runs.
func (c *converter) guard(st *rcState, lv *level, r *procmailrc.Recipe) (string, string) {
	var parts []string
	switch {
	case r.Has('e'):
		return "", "the rule ran only when the rule before it failed (a program's error); the new server has no such condition"
	case r.Has('A') || r.Has('a'):
		if !lv.lastPlainSet {
			break // procmail: nothing to chain on means the conditions held
		}
		if !lv.lastPlainOK {
			return "", "the rule depended on an earlier rule that could not be converted"
		}
		if r.Has('a') && lv.prev != nil && !lv.prev.converted {
			return "", "the rule depended on the success of an earlier rule that could not be converted"
		}
		c.require("variables")
		parts = append(parts, fmt.Sprintf("string :is \"${%s}\" \"1\"", lv.lastPlain))
	}
	if r.Has('E') && lv.prev != nil {
		if !lv.chainOK {
			return "", "the rule was the 'else' of an earlier rule that could not be converted"
		}
		c.require("variables")
		for _, v := range lv.chain {
			parts = append(parts, fmt.Sprintf("not string :is \"${%s}\" \"1\"", v))
		}
	}
	cond, why := c.conditions(st, lv, r)
	if why != "" {
		return "", why
	}
	parts = append(parts, cond)
	return allof(parts...), ""
}

func allof(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p == "true" || p == "" {
			continue
		}
		if p == "false" {
			return "false"
		}
		out = append(out, p)
	}
	switch len(out) {
	case 0:
		return "true"
	case 1:
		return out[0]
	}
	return "allof(" + strings.Join(out, ", ") + ")"
}

func anyof(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p == "false" || p == "" {
			continue
		}
		if p == "true" {
			return "true"
		}
		out = append(out, p)
	}
	switch len(out) {
	case 0:
		return "false"
	case 1:
		return out[0]
	}
	return "anyof(" + strings.Join(out, ", ") + ")"
}

func not(p string) string {
	switch p {
	case "true":
		return "false"
	case "false":
		return "true"
	}
	if strings.HasPrefix(p, "not ") {
		return strings.TrimPrefix(p, "not ")
	}
	return "not " + p
}

var weightRE = regexp.MustCompile(`^([-+]?[0-9]*\.?[0-9]+)\s*\^\s*([-+]?[0-9]*\.?[0-9]+)\s*`)

type scored struct {
	w, x float64
	neg  bool
	expr string
}

// conditions converts the recipe's conditions (and scoring).
func (c *converter) conditions(st *rcState, lv *level, r *procmailrc.Recipe) (string, string) {
	var plain []string
	var weighted []scored
	for _, cd := range r.Conds {
		text := cd.Text
		var w, x float64
		isW := false
		if m := weightRE.FindStringSubmatch(text); m != nil {
			w, _ = strconv.ParseFloat(m[1], 64)
			x, _ = strconv.ParseFloat(m[2], 64)
			isW = true
			text = text[len(m[0]):]
		}
		expr, neg, kind, why := c.condition(st, r, text, cd.Line)
		if why != "" {
			return "", fmt.Sprintf("condition on line %d: %s", cd.Line, why)
		}
		if !isW {
			plain = append(plain, expr)
			continue
		}
		if x != 0 && !neg && !(kind == "size" && x == 0) && expr != "true" {
			return "", fmt.Sprintf("condition on line %d scores each match (%s^%s); Sieve cannot count matches", cd.Line, strconv.FormatFloat(w, 'g', -1, 64), strconv.FormatFloat(x, 'g', -1, 64))
		}
		if kind == "size" && x != 0 {
			return "", fmt.Sprintf("condition on line %d scores by the message size; Sieve cannot", cd.Line)
		}
		weighted = append(weighted, scored{w: w, x: x, neg: neg, expr: expr})
	}
	if len(weighted) == 0 {
		return allof(plain...), ""
	}
	// Always-true weighted conditions (an empty regex) are constants.
	var vars []scored
	for _, s := range weighted {
		if s.expr != "true" && s.expr != "false" {
			vars = append(vars, s)
		}
	}
	if len(vars) > 8 {
		return "", "too many scored conditions (more than 8) to write out in Sieve"
	}
	var dnf []string
	for mask := 0; mask < 1<<len(vars); mask++ {
		score := 0.0
		vi := 0
		decided, match := false, false
		for _, s := range weighted {
			on := s.expr == "true"
			if s.expr != "true" && s.expr != "false" {
				on = mask&(1<<vi) != 0
				vi++
			}
			if decided || !on {
				continue
			}
			score += s.w
			if score >= math.MaxInt32 {
				decided, match = true, true
			} else if score <= -math.MaxInt32 {
				decided, match = true, false
			}
		}
		if !decided {
			match = score > 0
		}
		if !match {
			continue
		}
		var lits []string
		for i, s := range vars {
			if mask&(1<<i) != 0 {
				lits = append(lits, s.expr)
			} else {
				lits = append(lits, not(s.expr))
			}
		}
		dnf = append(dnf, allof(lits...))
	}
	return allof(append(plain, anyof(dnf...))...), ""
}

// condition converts one condition (without its weight). neg reports a
// '!' condition (for scoring); kind is "size" for size conditions.
func (c *converter) condition(st *rcState, r *procmailrc.Recipe, text string, line int) (expr string, neg bool, kind, why string) {
	area := "H"
	if r.Has('B') {
		area = "B"
		if r.Has('H') {
			area = "HB"
		}
	}
	for guard := 0; guard < 8; guard++ {
		text = strings.TrimLeft(text, " \t")
		if text == "" {
			break
		}
		switch text[0] {
		case '!':
			neg = !neg
			text = text[1:]
			continue
		case '$':
			v, unk, prog := expand(text[1:], st.env, true)
			if prog || unk != "" {
				return "", neg, "", fmt.Sprintf("it uses %s, only known when mail arrives", unkWhat(unk, prog))
			}
			text = v
			continue
		case '?':
			return "", neg, "", fmt.Sprintf("it tested the exit code of the program %q, which does not run on the new server", strings.TrimSpace(text[1:]))
		case '<', '>':
			n, err := strconv.ParseInt(strings.TrimSpace(text[1:]), 10, 64)
			if err != nil || n < 0 {
				return "", neg, "", fmt.Sprintf("bad size %q", text)
			}
			c.note("size conditions are compared with the message as the new server stores it (CRLF line ends, no From_ line), a little larger than procmail counted")
			op := ":under"
			if text[0] == '>' {
				op = ":over"
			}
			e := fmt.Sprintf("size %s %d", op, n)
			if neg {
				e = not(e)
			}
			return e, neg, "size", ""
		case '\\':
			text = text[1:]
		default:
			if m := varTestRE.FindStringSubmatch(text); m != nil {
				name := m[1]
				rest := text[len(m[0]):]
				switch name {
				case "H", "B", "HB", "BH":
					area = map[string]string{"H": "H", "B": "B", "HB": "HB", "BH": "HB"}[name]
					text = rest
				default:
					e, why := c.varTest(st, r, name, rest)
					if why != "" {
						return "", neg, "", why
					}
					if neg {
						e = not(e)
					}
					return e, neg, "", ""
				}
			}
		}
		break
	}
	e, why := c.regexTest(r, area, strings.TrimSpace(text))
	if why != "" {
		return "", neg, "", why
	}
	if neg {
		e = not(e)
	}
	return e, neg, "", ""
}

// formailXRE matches `formail -xField:` (also -c, quoted) as a value.
var formailXRE = regexp.MustCompile("^[\"]?`\\s*formail\\s+(?:-c\\s+)?-x\\s*([!-9;-~]+):\\s*`[\"]?$")

var varTestRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*\?\?\s*`)

func (c *converter) varTest(st *rcState, r *procmailrc.Recipe, name, re string) (string, string) {
	if field, ok := st.fields[name]; ok {
		return c.fieldVarTest(r, field, re)
	}
	v, ok := st.env.get(name)
	if !ok {
		return "", fmt.Sprintf("it tested $%s, only known when mail arrives", name)
	}
	rx, err := procmailrc.ParseRegex(re, !r.Has('D'))
	if err != nil {
		return "", fmt.Sprintf("bad regular expression: %v", err)
	}
	m, err := rx.MatchString(v)
	if err != nil {
		return "", fmt.Sprintf("bad regular expression: %v", err)
	}
	if m {
		return "true", ""
	}
	return "false", ""
}

// regexTest converts a regular expression condition on area H, B or HB.
func (c *converter) regexTest(r *procmailrc.Recipe, area, re string) (string, string) {
	fold := !r.Has('D')
	cmp := ""
	if !fold {
		cmp = ":comparator \"i;octet\" "
	}
	if re == "" {
		return "true", ""
	}
	var parts []string
	if area == "H" || area == "HB" {
		m, ok := procmailrc.ExpandMacros(re)
		if !ok {
			return "", "^FROM_DAEMON and ^FROM_MAILER are only converted when they are the whole condition"
		}
		rx, err := procmailrc.ParseRegex(m.Header, fold)
		if err != nil {
			return "", fmt.Sprintf("bad regular expression %q: %v", re, err)
		}
		fts, err := rx.FieldTests()
		if err != nil {
			// "^From.*x" reads the From: field and the From_ line.
			if e, ok := c.fromTests(rx, cmp); ok {
				parts = append(parts, e)
				goto body
			}
			return "", fmt.Sprintf("the expression %q %v; it has no Sieve form", re, err)
		}
		c.require("regex")
		for _, ft := range fts {
			p, err := ft.Emit()
			if err != nil {
				return "", fmt.Sprintf("the expression %q: %v", re, err)
			}
			parts = append(parts, fmt.Sprintf("header :regex %s%s %s", cmp, quoteList(ft.Names), quote(p)))
		}
		if m.FromLine != "" {
			c.require("envelope")
			parts = append(parts, "envelope :is \"from\" \"\"", fmt.Sprintf("envelope :regex %s\"from\" %s", cmp, quote(m.FromLine)))
		}
		if len(fts) > 0 {
			c.note("header conditions read the field's value after one space following the colon, as mailers write it")
		}
	}
body:
	if area == "B" || area == "HB" {
		rx, err := procmailrc.ParseRegex(re, fold)
		if err != nil {
			return "", fmt.Sprintf("bad regular expression %q: %v", re, err)
		}
		p, err := rx.BodyPattern()
		if err != nil {
			return "", fmt.Sprintf("the body expression %q: %v", re, err)
		}
		c.require("body", "regex")
		if strings.Contains(p, "${hex:") {
			c.require("encoded-character")
		}
		parts = append(parts, fmt.Sprintf("body :raw :regex %s%s", cmp, quote(p)))
	}
	return anyof(parts...), ""
}

// address completes a forwarding address and checks it as the new
// server's redirect reads it.
func (c *converter) address(a string) (string, error) {
	a = strings.Trim(a, "<>,")
	if !strings.Contains(a, "@") && c.o.Domain != "" {
		a += "@" + c.o.Domain
	}
	return delivery.RedirectAddress(a)
}

// fieldVarTest converts "VAR ?? re" for VAR=`formail -xField:`.
func (c *converter) fieldVarTest(r *procmailrc.Recipe, field, re string) (string, string) {
	rx, err := procmailrc.ParseRegex(re, !r.Has('D'))
	if err != nil {
		return "", fmt.Sprintf("bad regular expression: %v", err)
	}
	ft, empty, err := rx.VarFieldTest(field)
	if err != nil {
		return "", fmt.Sprintf("the expression %q on the %s field: %v", re, field, err)
	}
	p, err := ft.Emit()
	if err != nil {
		return "", fmt.Sprintf("the expression %q on the %s field: %v", re, field, err)
	}
	cmp := ""
	if r.Has('D') {
		cmp = ":comparator \"i;octet\" "
	}
	c.require("regex")
	e := fmt.Sprintf("header :regex %s%s %s", cmp, quote(ft.Names[0]), quote(p))
	if empty {
		e = anyof(fmt.Sprintf("not exists %s", quote(field)), e)
	}
	return e, ""
}

// fromTests converts "^From..." expressions that read the From: field and
// the From_ line (procmailrc.Regex.FromTests).
func (c *converter) fromTests(rx *procmailrc.Regex, cmp string) (string, bool) {
	ft, sender, null, err := rx.FromTests()
	if err != nil || (ft == nil && sender == "" && !null) {
		return "", false
	}
	var parts []string
	if ft != nil {
		p, err := ft.Emit()
		if err != nil {
			return "", false
		}
		c.require("regex")
		parts = append(parts, fmt.Sprintf("header :regex %s%s %s", cmp, quote(ft.Names[0]), quote(p)))
	}
	if sender != "" {
		c.require("envelope", "regex")
		parts = append(parts, allof("not envelope :is \"from\" \"\"", fmt.Sprintf("envelope :regex %s\"from\" %s", cmp, quote(sender))))
	}
	if null {
		c.require("envelope")
		parts = append(parts, "envelope :is \"from\" \"\"")
	}
	c.note("\"^From...\" conditions test the From: field and the envelope sender (procmail's From_ line); fields named From-something are not tested")
	return anyof(parts...), true
}
