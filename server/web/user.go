package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"mailmig/server/web/rules"
)

// webScript is the name of the script the page writes (ManageSieve sees
// it under this name; Roundcube calls its own "roundcube").
const webScript = "mailmig-web"

var funcs = template.FuncMap{
	"kb":  func(n int64) int64 { return (n + 1023) / 1024 },
	"inc": func(i int) int { return i + 1 },
	"pct": func(used, limit int64) string {
		if limit <= 0 {
			return ""
		}
		return strconv.FormatFloat(float64(used)*100/float64(limit), 'f', 2, 64)
	},
	"join": strings.Join,
	// fieldIs tells whether a form choice shows field.
	"fieldIs": func(choice, field string) bool {
		return choice == field || choice == "header" && strings.HasPrefix(field, rules.FieldHeader)
	},
	// hdr is the header name of a "header:NAME" field, for the form.
	"hdr": func(field string) string {
		name, _ := strings.CutPrefix(field, rules.FieldHeader)
		if name == field {
			return ""
		}
		return name
	},
}

// page is what every template gets.
type page struct {
	Title      string
	User       string
	CSRF       string
	Flash      string
	Error      string
	Postmaster bool
	Data       any
}

func (s *Server) render(w http.ResponseWriter, status int, name string, sess *session, p page) {
	if sess != nil {
		p.User, p.CSRF, p.Postmaster = sess.user, sess.csrf, s.isPostmaster(sess.user)
		if p.Flash == "" {
			p.Flash = s.sessions.takeFlash(sess)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.tmpl.ExecuteTemplate(w, name, p); err != nil {
		s.log.Error("web: render", "template", name, "err", err)
	}
}

func (s *Server) fail(w http.ResponseWriter, sess *session, err error) {
	s.log.Error("web: request failed", "user", sess.user, "err", err)
	s.render(w, http.StatusInternalServerError, "error.html", sess, page{Title: "Error", Error: "Something went wrong on the server; the postmaster can see what in the log."})
}

func (s *Server) redirect(w http.ResponseWriter, r *http.Request, sess *session, to, flash string) {
	if flash != "" {
		s.sessions.setFlash(sess, flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// --- login ---

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if sess := s.sessions.get(r); sess != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.renderLogin(w, http.StatusOK, "")
}

// loginData is what the login form shows besides the password fields.
type loginData struct {
	Kerberos bool // single sign-on offered at /login/kerberos
}

// renderLogin shows the login form, with errText above it if not empty.
func (s *Server) renderLogin(w http.ResponseWriter, status int, errText string) {
	s.render(w, status, "login.html", nil, page{Title: "Log in", Error: errText,
		Data: loginData{Kerberos: s.opts.Kerberos != nil}})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	user := strings.TrimSpace(r.PostFormValue("user"))
	pass := r.PostFormValue("password")
	if user == "" || pass == "" || len(user) > 256 || len(pass) > 1024 {
		s.renderLogin(w, http.StatusUnauthorized, "Enter your user name and password.")
		return
	}
	if err := s.opts.Auth.Authenticate(r.Context(), remoteIP(r), user, pass); err != nil {
		s.log.Info("web: login failed", "user", user, "remote", remoteIP(r))
		s.renderLogin(w, http.StatusUnauthorized, "Wrong user name or password, or too many attempts: wait a little and try again.")
		return
	}
	s.startSession(w, r, user, "password")
}

// startSession logs user in after a proved password or ticket.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user, method string) {
	// A fresh session id at every login: an id planted before the login
	// (session fixation) is never promoted.
	if old := s.sessions.get(r); old != nil {
		s.sessions.drop(old)
	}
	sess := s.sessions.create(user)
	s.setCookie(w, sess)
	s.log.Info("web: login", "user", user, "remote", remoteIP(r), "method", method)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	s.sessions.drop(sess)
	clearCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// --- home: quota ---

type homeData struct {
	Used, Limit        int64
	Messages, MsgLimit int64
	Folders            []folderLine
	ChangePassword     bool
}

type folderLine struct {
	Name     string
	Bytes    int64
	Messages int64
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, sess *session) {
	st, err := s.opts.Backend.Store(sess.user)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	defer st.Close()
	var d homeData
	d.Limit, d.MsgLimit = s.opts.Backend.Quota(sess.user)
	if d.Used, d.Messages, err = st.Usage(); err != nil {
		s.fail(w, sess, err)
		return
	}
	us, err := st.FolderUsages()
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	for _, u := range us {
		d.Folders = append(d.Folders, folderLine{u.Name, u.Bytes, u.Messages})
	}
	d.ChangePassword = s.opts.Backend.CanChangePassword(r.Context(), sess.user)
	s.render(w, http.StatusOK, "home.html", sess, page{Title: "Your mail", Data: d})
}

// --- filters ---

// userRules reads the user's active script: the page's own rules, or
// foreign text (read-only), or nothing.
func (s *Server) userRules(sess *session) (set *rules.Set, foreign []byte, foreignName string, err error) {
	st, err := s.opts.Backend.Scripts(sess.user)
	if err != nil {
		return nil, nil, "", err
	}
	name, content, err := st.Active()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, "", err
	}
	if name == "" || len(content) == 0 {
		return &rules.Set{}, nil, "", nil
	}
	set, err = rules.Parse(content)
	if errors.Is(err, rules.ErrForeign) {
		return nil, content, name, nil
	}
	return set, nil, name, err
}

// ownRules reads the page's own rules for a page that edits them; when
// the active script is not the page's (or cannot be read) it answers
// the request itself and returns false.
func (s *Server) ownRules(w http.ResponseWriter, r *http.Request, sess *session) (*rules.Set, bool) {
	set, _, _, err := s.userRules(sess)
	if err != nil {
		s.fail(w, sess, err)
		return nil, false
	}
	if set == nil {
		s.redirect(w, r, sess, "/filters", "Your filters were written by another program; replace them first.")
		return nil, false
	}
	return set, true
}

// saveRules writes set as the page's script and makes it active.
func (s *Server) saveRules(sess *session, set *rules.Set) error {
	if err := set.Validate(); err != nil {
		return err
	}
	st, err := s.opts.Backend.Scripts(sess.user)
	if err != nil {
		return err
	}
	script := set.Script()
	if err := st.HaveSpace(webScript, int64(len(script))); err != nil {
		return err
	}
	if err := st.Put(webScript, script); err != nil {
		return err
	}
	return st.SetActive(webScript)
}

type filtersData struct {
	Rules       []rules.Rule
	Foreign     string
	ForeignName string
	Global      string
	Vacation    bool
	// GlobalBefore: the site runs its spam rule before everyone's rules;
	// otherwise SpamKept says whether the user's script includes it.
	GlobalBefore bool
	SpamKept     bool
}

func (s *Server) filtersPage(w http.ResponseWriter, r *http.Request, sess *session) {
	set, foreign, fname, err := s.userRules(sess)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	d := filtersData{Foreign: string(foreign), ForeignName: fname, Global: s.opts.Backend.GlobalScript(),
		GlobalBefore: s.opts.Backend.GlobalBefore()}
	if set != nil {
		d.SpamKept = !set.NoSpamRule
		d.Rules = set.Rules
		d.Vacation = set.Vacation != nil && !set.Vacation.Disabled
	}
	s.render(w, http.StatusOK, "filters.html", sess, page{Title: "Filters", Data: d})
}

// filtersReplace starts over with the page's rules, deactivating the
// foreign script (which stays stored, as ManageSieve left it).
func (s *Server) filtersReplace(w http.ResponseWriter, r *http.Request, sess *session) {
	if r.PostFormValue("confirm") != "yes" {
		s.redirect(w, r, sess, "/filters", "Tick the box to confirm that the rules made here replace the other script.")
		return
	}
	if err := s.saveRules(sess, &rules.Set{}); err != nil {
		s.fail(w, sess, err)
		return
	}
	s.redirect(w, r, sess, "/filters", "The rules made here are now active; the other script is kept but no longer used.")
}

type ruleEditData struct {
	Index   int // -1: new
	Rule    rules.Rule
	Folders []string
	Fields  [][2]string
	Ops     [][2]string
	Actions [][2]string
	Rows    []int // condition rows to show
	ARows   []int
}

var (
	fieldChoices = [][2]string{{rules.FieldFrom, "From"}, {rules.FieldTo, "To"}, {rules.FieldCc, "Cc"}, {rules.FieldAnyTo, "To or Cc"}, {rules.FieldSubject, "Subject"}, {rules.FieldSize, "Size"}, {"header", "Header named…"}}
	opChoices    = [][2]string{{rules.OpContains, "contains"}, {rules.OpIs, "is"}, {rules.OpMatches, "matches (* and ?)"}, {rules.OpRegex, "matches regular expression"}, {rules.OpOver, "is over (size)"}, {rules.OpUnder, "is under (size)"}}
	actChoices   = [][2]string{{rules.ActFileinto, "File into folder"}, {rules.ActRedirect, "Forward to"}, {rules.ActRedirectCpy, "Forward a copy to"}, {rules.ActReject, "Reject with text"}, {rules.ActDiscard, "Discard"}, {rules.ActVacation, "Reply with text"}, {rules.ActKeepDeleted, "Keep a copy in INBOX marked as deleted"}, {rules.ActFlag, "Mark as flagged"}, {rules.ActSeen, "Mark as read"}}
)

const formRows = 6

func (s *Server) folderNames(sess *session) ([]string, error) {
	st, err := s.opts.Backend.Store(sess.user)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	fs, err := st.Folders()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(fs))
	for _, f := range fs {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names, nil
}

func (s *Server) ruleEditPage(w http.ResponseWriter, r *http.Request, sess *session) {
	set, ok := s.ownRules(w, r, sess)
	if !ok {
		return
	}
	d := ruleEditData{Index: -1, Fields: fieldChoices, Ops: opChoices, Actions: actChoices}
	if v := r.URL.Query().Get("i"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 || i >= len(set.Rules) {
			http.NotFound(w, r)
			return
		}
		d.Index, d.Rule = i, set.Rules[i]
	}
	folders, err := s.folderNames(sess)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	d.Folders = folders
	s.renderRuleEdit(w, http.StatusOK, sess, d, "")
}

func (s *Server) renderRuleEdit(w http.ResponseWriter, status int, sess *session, d ruleEditData, msg string) {
	d.Fields, d.Ops, d.Actions = fieldChoices, opChoices, actChoices
	for len(d.Rule.Conditions) < formRows {
		d.Rule.Conditions = append(d.Rule.Conditions, rules.Condition{})
	}
	for len(d.Rule.Actions) < formRows {
		d.Rule.Actions = append(d.Rule.Actions, rules.Action{})
	}
	d.Rows = make([]int, len(d.Rule.Conditions))
	d.ARows = make([]int, len(d.Rule.Actions))
	for i := range d.Rows {
		d.Rows[i] = i
	}
	for i := range d.ARows {
		d.ARows[i] = i
	}
	s.render(w, status, "rule.html", sess, page{Title: "Edit rule", Error: msg, Data: d})
}

// ruleFromForm reads the rule form. Condition i is field_i/op_i/not_i/
// value_i/header_i; action i is act_i/arg_i/create_i.
func ruleFromForm(r *http.Request) rules.Rule {
	f := r.PostFormValue
	rule := rules.Rule{Name: strings.TrimSpace(f("name")), Any: f("match") == "any", Continue: f("continue") == "on", Disabled: f("enabled") != "on"}
	for i := 0; i < rules.MaxConditions; i++ {
		k := strconv.Itoa(i)
		field := f("field_" + k)
		if field == "" {
			continue
		}
		value := f("value_" + k)
		if field == "header" {
			name := strings.TrimSpace(f("header_" + k))
			if name == "" {
				continue
			}
			field = rules.FieldHeader + name
		}
		if value == "" && field != rules.FieldSize {
			continue
		}
		rule.Conditions = append(rule.Conditions, rules.Condition{Field: field, Op: f("op_" + k), Not: f("not_"+k) == "on", Value: value})
	}
	for i := 0; i < rules.MaxActions; i++ {
		k := strconv.Itoa(i)
		kind := f("act_" + k)
		if kind == "" {
			continue
		}
		a := rules.Action{Kind: kind, Arg: strings.TrimSpace(f("arg_" + k))}
		if kind == rules.ActFileinto {
			if nf := strings.TrimSpace(f("newfolder_" + k)); nf != "" {
				a.Arg, a.Create = nf, true
			}
		}
		if kind == rules.ActVacation {
			a.Arg = f("arg_" + k)
			a.Days = 7
		}
		rule.Actions = append(rule.Actions, a)
	}
	if rule.Name == "" {
		rule.Name = "rule"
	}
	return rule
}

func (s *Server) ruleSave(w http.ResponseWriter, r *http.Request, sess *session) {
	set, ok := s.ownRules(w, r, sess)
	if !ok {
		return
	}
	idx, err := strconv.Atoi(r.PostFormValue("index"))
	if err != nil || idx < -1 || idx >= len(set.Rules) {
		http.Error(w, "bad rule index", http.StatusBadRequest)
		return
	}
	rule := ruleFromForm(r)
	next := &rules.Set{Vacation: set.Vacation, Rules: slices.Clone(set.Rules)}
	if idx == -1 {
		next.Rules = append(next.Rules, rule)
	} else {
		next.Rules[idx] = rule
	}
	if err := s.saveRules(sess, next); err != nil {
		folders, _ := s.folderNames(sess)
		s.renderRuleEdit(w, http.StatusUnprocessableEntity, sess, ruleEditData{Index: idx, Rule: rule, Folders: folders}, err.Error())
		return
	}
	s.redirect(w, r, sess, "/filters", fmt.Sprintf("Rule %q saved.", rule.Name))
}

// ruleAction moves, enables, disables or deletes rule i.
// filtersSpam keeps or turns off the site's spam rule in the user's own
// script (the include at its top).
func (s *Server) filtersSpam(w http.ResponseWriter, r *http.Request, sess *session) {
	set, ok := s.ownRules(w, r, sess)
	if !ok {
		return
	}
	msg := "The site's spam rule is on again: spam goes to the spam folder."
	switch r.PostFormValue("do") {
	case "off":
		set.NoSpamRule = true
		msg = "The site's spam rule is off for you: messages marked as spam stay in your INBOX unless a rule of yours files them."
	case "on":
		set.NoSpamRule = false
	default:
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := s.saveRules(sess, set); err != nil {
		s.fail(w, sess, err)
		return
	}
	s.redirect(w, r, sess, "/filters", msg)
}

func (s *Server) ruleAction(w http.ResponseWriter, r *http.Request, sess *session) {
	set, ok := s.ownRules(w, r, sess)
	if !ok {
		return
	}
	i, err := strconv.Atoi(r.PostFormValue("i"))
	if err != nil || i < 0 || i >= len(set.Rules) {
		http.Error(w, "bad rule index", http.StatusBadRequest)
		return
	}
	rs := set.Rules
	msg := ""
	switch r.PostFormValue("do") {
	case "up":
		if i > 0 {
			rs[i-1], rs[i] = rs[i], rs[i-1]
		}
	case "down":
		if i < len(rs)-1 {
			rs[i+1], rs[i] = rs[i], rs[i+1]
		}
	case "enable":
		rs[i].Disabled = false
	case "disable":
		rs[i].Disabled = true
	case "delete":
		msg = fmt.Sprintf("Rule %q deleted.", rs[i].Name)
		set.Rules = slices.Delete(rs, i, i+1)
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	if err := s.saveRules(sess, set); err != nil {
		s.redirect(w, r, sess, "/filters", err.Error())
		return
	}
	s.redirect(w, r, sess, "/filters", msg)
}

// --- vacation ---

func (s *Server) vacationPage(w http.ResponseWriter, r *http.Request, sess *session) {
	set, ok := s.ownRules(w, r, sess)
	if !ok {
		return
	}
	v := set.Vacation
	if v == nil {
		v = &rules.Vacation{Disabled: true, Days: 7}
	}
	s.render(w, http.StatusOK, "vacation.html", sess, page{Title: "Automatic reply", Data: v})
}

func (s *Server) vacationSave(w http.ResponseWriter, r *http.Request, sess *session) {
	set, ok := s.ownRules(w, r, sess)
	if !ok {
		return
	}
	f := r.PostFormValue
	days, _ := strconv.Atoi(f("days"))
	v := &rules.Vacation{Disabled: f("enabled") != "on", Subject: strings.TrimSpace(f("subject")), From: strings.TrimSpace(f("from")),
		Days: days, Start: f("start"), End: f("end"), Text: strings.ReplaceAll(f("text"), "\r\n", "\n")}
	for _, a := range strings.FieldsFunc(f("addresses"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' }) {
		v.Addresses = append(v.Addresses, a)
	}
	if v.Disabled && strings.TrimSpace(v.Text) == "" {
		set.Vacation = nil
	} else {
		set.Vacation = v
	}
	if err := s.saveRules(sess, set); err != nil {
		s.render(w, http.StatusUnprocessableEntity, "vacation.html", sess, page{Title: "Automatic reply", Error: err.Error(), Data: v})
		return
	}
	msg := "The automatic reply is off."
	if !v.Disabled {
		msg = "The automatic reply is on."
	}
	s.redirect(w, r, sess, "/vacation", msg)
}

// --- password ---

func (s *Server) passwordPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.render(w, http.StatusOK, "password.html", sess, page{Title: "Password", Data: s.opts.Backend.CanChangePassword(r.Context(), sess.user)})
}

func (s *Server) passwordSave(w http.ResponseWriter, r *http.Request, sess *session) {
	can := s.opts.Backend.CanChangePassword(r.Context(), sess.user)
	show := func(status int, msg string) {
		s.render(w, status, "password.html", sess, page{Title: "Password", Error: msg, Data: can})
	}
	if !can {
		show(http.StatusForbidden, "Your password is your usual login password; change it where you always did.")
		return
	}
	old, nw, again := r.PostFormValue("old"), r.PostFormValue("new"), r.PostFormValue("again")
	if err := s.opts.Auth.Authenticate(r.Context(), remoteIP(r), sess.user, old); err != nil {
		show(http.StatusUnauthorized, "The current password is wrong.")
		return
	}
	if nw != again {
		show(http.StatusUnprocessableEntity, "The two new passwords differ.")
		return
	}
	if len(nw) < 8 || len(nw) > 1024 {
		show(http.StatusUnprocessableEntity, "The new password must have 8 characters or more.")
		return
	}
	if err := s.opts.Backend.SetPassword(r.Context(), sess.user, nw); err != nil {
		s.fail(w, sess, err)
		return
	}
	s.log.Info("web: password changed", "user", sess.user, "remote", remoteIP(r))
	s.redirect(w, r, sess, "/", "Your password has been changed; use the new one in your mail program too.")
}

// --- setup ---

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "setup.html", s.sessions.get(r), page{Title: "Set up your mail program", Data: struct {
		Client Client
		CA     bool
	}{s.opts.Client, len(s.opts.CAChain) > 0}})
}
