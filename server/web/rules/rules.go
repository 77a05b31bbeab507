// Package rules holds the filter rules users build on the web page (the
// rule form of the old site: "IF all/any of From/To/Subject contains …,
// size less/greater than … THEN file into / forward to / reject / discard
// …") and turns them into a normal Sieve script (RFC 5228 with fileinto,
// reject, copy, imap4flags, regex, vacation, mailbox and include for the
// site's spam rule).
//
// The script carries its own rule list in comments, one `# rule: JSON`
// line before each rule (as Roundcube's managesieve plugin keeps its
// `# rule:[name]` lines), so the page can read back what it wrote. A
// script whose text is not exactly what its encoded rules generate — one
// uploaded over ManageSieve, or edited by hand — is not the page's: Parse
// returns ErrForeign and the page shows it read-only.
//
// Implementation notes:
//   - Every value reaches the script through quote, which escapes `\` and
//     `"` (RFC 5228 §2.4.2); nothing a user types can end a string.
//   - A disabled rule is still written, as `if false { … }`, so its order
//     and text survive.
package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"mailmig/server/delivery"
)

// Header is the first line of every script the page writes.
const Header = "# mailmig web rules v1"

// ErrForeign is returned by Parse for a script the page did not write.
var ErrForeign = errors.New("rules: script was not written by the web page")

// Fields a condition can test. A named header is "header:NAME".
const (
	FieldFrom    = "from"
	FieldTo      = "to"
	FieldCc      = "cc"
	FieldSubject = "subject"
	FieldAnyTo   = "to-or-cc"
	FieldSize    = "size"
	FieldHeader  = "header:"
)

// Condition operators. Over/Under are for size only.
const (
	OpContains = "contains"
	OpIs       = "is"
	OpMatches  = "matches" // * and ? wildcards
	OpRegex    = "regex"
	OpOver     = "over"
	OpUnder    = "under"
)

// Action kinds.
const (
	ActFileinto    = "fileinto"
	ActRedirect    = "redirect"
	ActRedirectCpy = "redirect-copy" // forward and keep
	ActReject      = "reject"
	ActDiscard     = "discard"
	ActVacation    = "vacation"
	ActKeepDeleted = "keep-deleted" // keep a copy in INBOX marked \Deleted
	ActFlag        = "flag"         // mark as \Flagged
	ActSeen        = "seen"         // mark as read
)

// Condition is one test of a rule.
type Condition struct {
	Field string `json:"f"`
	Op    string `json:"o"`
	Not   bool   `json:"n,omitempty"`
	Value string `json:"v"`
}

// Action is one thing a rule does. Arg is the folder (fileinto), address
// (redirect), text (reject, vacation); Create makes a missing folder.
type Action struct {
	Kind   string `json:"k"`
	Arg    string `json:"a,omitempty"`
	Create bool   `json:"c,omitempty"`
	Days   int    `json:"d,omitempty"` // vacation
}

// Rule is one rule of the form, in priority order within a Set.
type Rule struct {
	Name       string      `json:"name"`
	Disabled   bool        `json:"off,omitempty"`
	Any        bool        `json:"any,omitempty"` // anyof instead of allof
	Conditions []Condition `json:"if"`
	Actions    []Action    `json:"then"`
	// Continue goes on to the next rule; otherwise the rule ends with stop.
	Continue bool `json:"cont,omitempty"`
}

// Set is a user's rules in order, and their automatic reply.
type Set struct {
	Vacation *Vacation
	Rules    []Rule
	// NoSpamRule leaves out the site's spam rule. By default the script
	// starts with `include :global "spam"` (RFC 6609), so a user who
	// makes rules here keeps the site's spam filing even where the site
	// runs its global script only for users without one.
	NoSpamRule bool
}

// Spam rule lines: which one the script carries says whether the site's
// rule is kept.
const (
	spamKept = "# spam rule: the site's, kept\ninclude :global \"spam\";\n"
	spamOff  = "# spam rule: off\n"
)

// Vacation is the automatic reply (RFC 5230), sent at most once per Days
// to each sender, between Start and End when they are set (RFC 5260
// currentdate, dates as YYYY-MM-DD in the server's zone).
type Vacation struct {
	Disabled  bool     `json:"off,omitempty"`
	Subject   string   `json:"subject,omitempty"`
	From      string   `json:"from,omitempty"`
	Days      int      `json:"days,omitempty"`
	Start     string   `json:"start,omitempty"`
	End       string   `json:"end,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Text      string   `json:"text"`
}

// Limits on what the form accepts (a web form makes about 200 rules at
// most in practice; these bound what a request can make the server hold).
const (
	MaxRules      = 500
	MaxConditions = 32
	MaxActions    = 16
	MaxValue      = 4096
)

// Validate checks every rule; the error names the rule (1-based) and what
// is wrong, in words fit for the page.
func (s *Set) Validate() error {
	if len(s.Rules) > MaxRules {
		return fmt.Errorf("at most %d rules", MaxRules)
	}
	if v := s.Vacation; v != nil {
		if err := v.validate(); err != nil {
			return fmt.Errorf("automatic reply: %w", err)
		}
	}
	vacation := s.Vacation != nil && !s.Vacation.Disabled
	for i, r := range s.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("rule %d (%s): %w", i+1, r.Name, err)
		}
		// RFC 5429 §2.1: reject cannot run with vacation in one script
		// (pigeonhole refuses it at run time).
		if vacation && !r.Disabled && r.rejects() {
			return fmt.Errorf("rule %d (%s): reject cannot be used while the automatic reply is on", i+1, r.Name)
		}
	}
	return nil
}

var headerName = regexp.MustCompile(`^[!-9;-~]+$`) // RFC 5322 §3.6.8 field name

func (r *Rule) validate() error {
	if !utf8.ValidString(r.Name) || len(r.Name) > 200 || strings.ContainsAny(r.Name, "\r\n") {
		return errors.New("the name must be one line of at most 200 characters")
	}
	if len(r.Conditions) > MaxConditions || len(r.Actions) > MaxActions {
		return fmt.Errorf("at most %d conditions and %d actions", MaxConditions, MaxActions)
	}
	if len(r.Actions) == 0 {
		return errors.New("a rule needs an action")
	}
	for _, c := range r.Conditions {
		if err := c.validate(); err != nil {
			return err
		}
	}
	terminal := 0
	for _, a := range r.Actions {
		if err := a.validate(); err != nil {
			return err
		}
		if a.Kind == ActReject {
			terminal++
		}
	}
	if terminal > 0 && len(r.Actions) > 1 {
		return errors.New("reject cannot be combined with other actions")
	}
	return nil
}

func (c *Condition) validate() error {
	if !utf8.ValidString(c.Value) || len(c.Value) > MaxValue {
		return fmt.Errorf("a value must be text of at most %d bytes", MaxValue)
	}
	switch {
	case c.Field == FieldSize:
		if c.Op != OpOver && c.Op != OpUnder {
			return errors.New("size is tested with over or under")
		}
		if _, err := parseSize(c.Value); err != nil {
			return err
		}
		return nil
	case c.Field == FieldFrom, c.Field == FieldTo, c.Field == FieldCc, c.Field == FieldSubject, c.Field == FieldAnyTo:
	case strings.HasPrefix(c.Field, FieldHeader):
		if !headerName.MatchString(strings.TrimPrefix(c.Field, FieldHeader)) {
			return fmt.Errorf("%q is not a header field name", strings.TrimPrefix(c.Field, FieldHeader))
		}
	default:
		return fmt.Errorf("unknown field %q", c.Field)
	}
	switch c.Op {
	case OpContains, OpIs, OpMatches:
	case OpRegex:
		if _, err := regexp.Compile(c.Value); err != nil {
			return fmt.Errorf("%q is not a regular expression", c.Value)
		}
	default:
		return fmt.Errorf("unknown comparison %q", c.Op)
	}
	return nil
}

func (a *Action) validate() error {
	if !utf8.ValidString(a.Arg) || len(a.Arg) > MaxValue {
		return fmt.Errorf("a value must be text of at most %d bytes", MaxValue)
	}
	switch a.Kind {
	case ActFileinto:
		if a.Arg == "" || strings.ContainsAny(a.Arg, "\r\n\x00") {
			return errors.New("file into needs a folder")
		}
	case ActRedirect, ActRedirectCpy:
		if err := ValidAddress(a.Arg); err != nil {
			return err
		}
	case ActReject:
		if strings.TrimSpace(a.Arg) == "" {
			return errors.New("reject needs a text")
		}
	case ActVacation:
		if strings.TrimSpace(a.Arg) == "" {
			return errors.New("an automatic reply needs a text")
		}
		if a.Days < 0 || a.Days > 365 {
			return errors.New("the reply interval is 1 to 365 days")
		}
	case ActDiscard, ActKeepDeleted, ActFlag, ActSeen:
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	return nil
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

func (v *Vacation) validate() error {
	if strings.TrimSpace(v.Text) == "" {
		return errors.New("the reply needs a text")
	}
	for _, s := range []string{v.Text, v.Subject, v.From} {
		if !utf8.ValidString(s) || len(s) > 16*MaxValue {
			return errors.New("texts must be UTF-8")
		}
	}
	if strings.ContainsAny(v.Subject, "\r\n") {
		return errors.New("the subject must be one line")
	}
	if v.From != "" {
		if err := ValidAddress(v.From); err != nil {
			return err
		}
	}
	if v.Days < 0 || v.Days > 365 {
		return errors.New("the reply interval is 1 to 365 days")
	}
	for _, d := range []string{v.Start, v.End} {
		if d != "" && !dateRE.MatchString(d) {
			return fmt.Errorf("%q is not a date (YYYY-MM-DD)", d)
		}
	}
	if v.Start != "" && v.End != "" && v.End < v.Start {
		return errors.New("the end date is before the start date")
	}
	if len(v.Addresses) > 32 {
		return errors.New("at most 32 addresses")
	}
	for _, a := range v.Addresses {
		if err := ValidAddress(a); err != nil {
			return err
		}
	}
	return nil
}

// ValidAddress accepts one plain mailbox (local@domain), as RFC 5321 §4.1.2
// allows it on the SMTP wire: no display name, no spaces, no brackets.
func ValidAddress(s string) error {
	if delivery.ValidMailbox(s) != nil {
		return fmt.Errorf("%q is not an e-mail address (name@example.org)", s)
	}
	return nil
}

// parseSize reads "100", "100K", "5M" (Sieve's size units, RFC 5228 §2.4.1).
func parseSize(v string) (string, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "")
	num, unit := t, ""
	if n := len(t); n > 0 && strings.ContainsRune("KMG", rune(t[n-1])) {
		num, unit = t[:n-1], t[n-1:]
	}
	if n, err := strconv.ParseUint(num, 10, 32); err != nil || n == 0 {
		return "", fmt.Errorf("%q is not a size (e.g. 500K, 2M)", v)
	}
	return num + unit, nil
}

// Script writes the Sieve script for s. It assumes Validate passed.
func (s *Set) Script() []byte {
	var body bytes.Buffer
	need := map[string]bool{}
	if s.NoSpamRule {
		body.WriteString("\n" + spamOff)
	} else {
		need["include"] = true
		body.WriteString("\n" + spamKept)
	}
	if v := s.Vacation; v != nil {
		enc, _ := json.Marshal(v)
		fmt.Fprintf(&body, "\n# vacation: %s\n", base64.RawURLEncoding.EncodeToString(enc))
		v.write(&body, need)
	}
	for _, r := range s.Rules {
		enc, _ := json.Marshal(r)
		fmt.Fprintf(&body, "\n# rule: %s\n", base64.RawURLEncoding.EncodeToString(enc))
		fmt.Fprintf(&body, "# %s\n", commentSafe(r.Name))
		r.write(&body, need)
	}
	var out bytes.Buffer
	out.WriteString(Header + "\n")
	out.WriteString("# Written by the mailmig web page. Edit it there: a change made here\n# makes the page show the script read-only.\n")
	if len(need) > 0 {
		exts := make([]string, 0, len(need))
		for e := range need {
			exts = append(exts, e)
		}
		slices.Sort(exts)
		out.WriteString("require [")
		for i, e := range exts {
			if i > 0 {
				out.WriteString(", ")
			}
			out.WriteString(quote(e))
		}
		out.WriteString("];\n")
	}
	out.Write(body.Bytes())
	return out.Bytes()
}

func commentSafe(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func (r *Rule) write(w *bytes.Buffer, need map[string]bool) {
	test := r.test(need)
	if r.Disabled {
		test = "false"
	}
	fmt.Fprintf(w, "if %s {\n", test)
	for _, a := range r.Actions {
		w.WriteString("  ")
		w.WriteString(a.command(need))
		w.WriteString("\n")
	}
	if !r.Continue && !r.rejects() {
		w.WriteString("  stop;\n")
	}
	w.WriteString("}\n")
}

func (v *Vacation) write(w *bytes.Buffer, need map[string]bool) {
	need["vacation"] = true
	var tests []string
	if v.Disabled {
		tests = append(tests, "false")
	}
	if v.Start != "" {
		need["date"], need["relational"] = true, true
		tests = append(tests, `currentdate :value "ge" "date" `+quote(v.Start))
	}
	if v.End != "" {
		need["date"], need["relational"] = true, true
		tests = append(tests, `currentdate :value "le" "date" `+quote(v.End))
	}
	cmd := "vacation"
	days := v.Days
	if days == 0 {
		days = 7
	}
	cmd += fmt.Sprintf(" :days %d", days)
	if v.Subject != "" {
		cmd += " :subject " + quote(v.Subject)
	}
	if v.From != "" {
		cmd += " :from " + quote(v.From)
	}
	if len(v.Addresses) > 0 {
		q := make([]string, len(v.Addresses))
		for i, a := range v.Addresses {
			q[i] = quote(a)
		}
		cmd += " :addresses [" + strings.Join(q, ", ") + "]"
	}
	cmd += " " + quote(v.Text) + ";"
	switch len(tests) {
	case 0:
		fmt.Fprintf(w, "%s\n", cmd)
	case 1:
		fmt.Fprintf(w, "if %s {\n  %s\n}\n", tests[0], cmd)
	default:
		fmt.Fprintf(w, "if allof (%s) {\n  %s\n}\n", strings.Join(tests, ", "), cmd)
	}
}

func (r *Rule) rejects() bool {
	return len(r.Actions) == 1 && r.Actions[0].Kind == ActReject
}

func (r *Rule) test(need map[string]bool) string {
	if len(r.Conditions) == 0 {
		return "true"
	}
	parts := make([]string, len(r.Conditions))
	for i, c := range r.Conditions {
		parts[i] = c.test(need)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	op := "allof"
	if r.Any {
		op = "anyof"
	}
	return op + " (" + strings.Join(parts, ", ") + ")"
}

func (c *Condition) test(need map[string]bool) string {
	var t string
	if c.Field == FieldSize {
		n, _ := parseSize(c.Value)
		t = "size :" + c.Op + " " + n
	} else {
		match := ":" + c.Op
		if c.Op == OpRegex {
			need["regex"] = true
		}
		switch c.Field {
		case FieldFrom, FieldTo, FieldCc:
			// address tests compare the address itself, not the display
			// name, for "is"; header tests see the whole field, which is
			// what users mean with "contains" (name or address).
			if c.Op == OpIs {
				t = "address " + match + " " + quote(c.Field) + " " + quote(c.Value)
			} else {
				t = "header " + match + " " + quote(c.Field) + " " + quote(c.Value)
			}
		case FieldAnyTo:
			if c.Op == OpIs {
				t = "address " + match + ` ["to", "cc"] ` + quote(c.Value)
			} else {
				t = "header " + match + ` ["to", "cc"] ` + quote(c.Value)
			}
		default:
			name := strings.TrimPrefix(c.Field, FieldHeader)
			if c.Field == FieldSubject {
				name = "subject"
			}
			t = "header " + match + " " + quote(name) + " " + quote(c.Value)
		}
	}
	if c.Not {
		t = "not " + t
	}
	return t
}

func (a *Action) command(need map[string]bool) string {
	switch a.Kind {
	case ActFileinto:
		need["fileinto"] = true
		if a.Create {
			need["mailbox"] = true
			return "fileinto :create " + quote(a.Arg) + ";"
		}
		return "fileinto " + quote(a.Arg) + ";"
	case ActRedirect:
		return "redirect " + quote(a.Arg) + ";"
	case ActRedirectCpy:
		need["copy"] = true
		return "redirect :copy " + quote(a.Arg) + ";"
	case ActReject:
		need["reject"] = true
		return "reject " + quote(a.Arg) + ";"
	case ActDiscard:
		return "discard;"
	case ActVacation:
		need["vacation"] = true
		days := a.Days
		if days == 0 {
			days = 7
		}
		return fmt.Sprintf("vacation :days %d %s;", days, quote(a.Arg))
	case ActKeepDeleted:
		need["imap4flags"] = true
		return `keep :flags "\\Deleted";`
	case ActFlag:
		need["imap4flags"] = true
		return `addflag "\\Flagged";`
	case ActSeen:
		need["imap4flags"] = true
		return `addflag "\\Seen";`
	}
	return "keep;"
}

// quote writes s as a Sieve quoted string (RFC 5228 §2.4.2): backslash
// and double quote escaped; line ends written as LF (the script's own).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\r':
		case '\n':
			b.WriteByte('\n')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Parse reads back a script the page wrote. An empty script is an empty
// Set; any other script whose text differs from what its rules generate
// returns ErrForeign.
func Parse(script []byte) (*Set, error) {
	if len(bytes.TrimSpace(script)) == 0 {
		return &Set{}, nil
	}
	if !bytes.HasPrefix(script, []byte(Header+"\n")) {
		return nil, ErrForeign
	}
	s := &Set{NoSpamRule: bytes.Contains(script, []byte("\n"+spamOff))}
	for _, line := range bytes.Split(script, []byte("\n")) {
		if enc, ok := bytes.CutPrefix(line, []byte("# vacation: ")); ok {
			raw, err := base64.RawURLEncoding.DecodeString(string(enc))
			var v Vacation
			if err != nil || json.Unmarshal(raw, &v) != nil || s.Vacation != nil {
				return nil, ErrForeign
			}
			s.Vacation = &v
			continue
		}
		enc, ok := bytes.CutPrefix(line, []byte("# rule: "))
		if !ok {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(string(enc))
		if err != nil {
			return nil, ErrForeign
		}
		var r Rule
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, ErrForeign
		}
		s.Rules = append(s.Rules, r)
	}
	if s.Validate() != nil || !bytes.Equal(s.Script(), script) {
		return nil, ErrForeign
	}
	return s, nil
}
