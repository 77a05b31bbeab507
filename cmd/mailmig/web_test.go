package main

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// browser is a headless Debian chromium driven over the DevTools
// protocol, with one tab.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	shots   string
	nshot   int
	timeout time.Duration
}

// newBrowser starts chromium (as the probe does: no sandbox as root, no
// background networking on this closed network) against base.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := requireTool(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// The --data world's certificate is self-signed.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	shots := os.Getenv("MAILMIG_ARTIFACTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "mailmig-web-artifacts")
	}
	shots = filepath.Join(shots, t.Name())
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	b := &browser{t: t, ctx: ctx, base: base, shots: shots, timeout: 30 * time.Second}
	// The first action starts the browser: it must run on the context
	// itself (a timeout on it would stop the whole browser).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.try(actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browser) try(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// get runs one action that returns a value.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base+path), chromedp.WaitReady("body"))
}

// text returns the visible text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return get(b, chromedp.Text(chromedp.CSS(sel)))
}

// shot keeps a full-page screenshot as a test artifact.
func (b *browser) shot(name string) {
	b.t.Helper()
	png := get(b, chromedp.FullScreenshot(100))
	b.nshot++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.nshot, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) login(user, password string) {
	b.t.Helper()
	b.open("/login")
	b.run(chromedp.SendKeys(chromedp.CSS(`input[name=user]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`#login`)),
		chromedp.WaitVisible(chromedp.CSS(`#quota`)))
}

// fill sets form fields by name (select, text, textarea) and ticks or
// unticks checkboxes ("on"/"off").
func (b *browser) fill(form string, fields map[string]string) {
	b.t.Helper()
	for name, v := range fields {
		sel := form + ` [name="` + name + `"]`
		n := get(b, chromedp.Nodes(chromedp.CSS(sel)))[0]
		switch {
		case n.NodeName == "SELECT" || n.NodeName == "TEXTAREA":
			if err := b.try(chromedp.SetJavascriptAttribute(chromedp.CSS(sel), "value", v)); err != nil {
				b.t.Fatalf("select %s = %q: %v", sel, v, err)
			}
		case n.AttributeValue("type") == "checkbox":
			checked := get(b, chromedp.JavascriptAttribute[bool](chromedp.CSS(sel), "checked"))
			if checked != (v == "on") {
				b.run(chromedp.Click(chromedp.CSS(sel)))
			}
		default:
			if err := b.try(chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), v)); err != nil {
				b.t.Fatalf("field %s = %q: %v", sel, v, err)
			}
		}
	}
}

// submit clicks a button that sends a form and waits until the answer's
// page (a new document) has loaded.
func (b *browser) submit(button string) {
	b.t.Helper()
	get(b, chromedp.Evaluate[bool](`window.mailmigOld = true`))
	b.run(chromedp.Click(chromedp.CSS(button)))
	deadline := time.Now().Add(b.timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.mailmigOld === undefined && document.readyState === "complete"`))
		cancel()
		if err == nil && done {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	b.t.Fatalf("no new page after clicking %s", button)
}

// lmtpDeliver sends one message over LMTP and fails on any refusal.
func lmtpDeliver(t *testing.T, s *served, from, to, msg string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr("lmtp"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail(from, []string{to}, strings.NewReader(strings.ReplaceAll(msg, "\n", "\r\n"))); err != nil {
		t.Fatalf("LMTP to %s: %v\n%s", to, err, s.Log())
	}
}

// folderFiles lists the message files of a user's folder ("" = INBOX).
func folderFiles(t *testing.T, dataDir, user, folder string) []string {
	t.Helper()
	dir := filepath.Join(dataDir, "mail", user, "Maildir")
	if folder != "" {
		dir = filepath.Join(dir, "."+strings.ReplaceAll(folder, "/", "."))
	}
	var out []string
	for _, sub := range []string{"new", "cur"} {
		es, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range es {
			out = append(out, filepath.Join(dir, sub, e.Name()))
		}
	}
	return out
}

func fileHas(t *testing.T, files []string, substr string) string {
	t.Helper()
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), substr) {
			return f
		}
	}
	return ""
}

// TestWebFilters: a user logs in with a real browser, builds rules with
// the form, and real LMTP deliveries land where the rules say; rules are
// edited, reordered, disabled and deleted; the script round-trips through
// ManageSieve's storage.
func TestWebFilters(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pass-1")
	s := startServe(t, dir)
	b := newBrowser(t, "https://"+s.Addr("web"))
	b.login("alice", "alice-pass-1")
	b.shot("home")
	if q := b.text("#quota"); !strings.Contains(q, "kB / 1048576 kB (") || !strings.Contains(q, "% usage)") {
		t.Fatalf("quota line %q", q)
	}

	// Rule 1: Subject contains "invoice" -> new folder Bills.
	b.open("/filters")
	b.shot("filters-empty")
	b.open("/filters/edit")
	b.fill("#ruleform", map[string]string{"name": "bills", "field_0": "subject", "op_0": "contains", "value_0": "invoice",
		"act_0": "fileinto", "newfolder_0": "Bills"})
	b.shot("rule-form")
	b.submit("#save")
	if got := b.text(".flash"); !strings.Contains(got, `"bills" saved`) {
		t.Fatalf("after save: %q", got)
	}
	// Rule 2: From is boss@example.net -> file into Bills too, keep a copy
	// in INBOX marked \Deleted, and forward a copy (any of two conditions).
	b.open("/filters/edit")
	b.fill("#ruleform", map[string]string{"name": "boss", "match": "any",
		"field_0": "from", "op_0": "is", "value_0": "boss@example.net",
		"field_1": "header", "header_1": "X-Priority", "op_1": "matches", "value_1": "1*",
		"act_0": "fileinto", "arg_0": "Bills", "act_1": "keep-deleted"})
	b.submit("#save")
	// Rule 3 (XSS in the name and value): size over 1K -> discard.
	xss := `<img src=x id=pwned onerror="document.title='pwned'">`
	b.open("/filters/edit")
	b.fill("#ruleform", map[string]string{"name": xss, "field_0": "size", "op_0": "over", "value_0": "1K", "act_0": "discard"})
	b.submit("#save")
	b.open("/filters")
	b.shot("filters-three")
	pwned := get(b, chromedp.Evaluate[int](`document.querySelectorAll('#pwned').length`))
	title := get(b, chromedp.Title())
	if pwned != 0 || title == "pwned" || !strings.Contains(b.text("#rules"), "<img src=x") {
		t.Fatalf("rule name not rendered inert: %d elements, title %q, table %q", pwned, title, b.text("#rules"))
	}

	lmtpDeliver(t, s, "shop@example.com", "alice@example.org", "From: shop@example.com\nSubject: Your invoice 42\n\nshort\n")
	lmtpDeliver(t, s, "boss@example.net", "alice@example.org", "From: Boss <boss@example.net>\nSubject: meeting\n\nshort\n")
	lmtpDeliver(t, s, "big@example.com", "alice@example.org", "From: big@example.com\nSubject: big\n\n"+strings.Repeat(strings.Repeat("x", 70)+"\n", 30))
	lmtpDeliver(t, s, "friend@example.com", "alice@example.org", "From: friend@example.com\nSubject: hello\n\nshort\n")
	bills := folderFiles(t, dir, "alice", "Bills")
	inbox := folderFiles(t, dir, "alice", "")
	if fileHas(t, bills, "invoice 42") == "" || fileHas(t, bills, "meeting") == "" {
		t.Fatalf("Bills has %v", bills)
	}
	if f := fileHas(t, inbox, "Subject: meeting"); f == "" || !strings.Contains(filepath.Base(f), ":2,") || !strings.Contains(f[strings.LastIndex(f, ":2,"):], "T") {
		t.Fatalf("boss's INBOX copy is not marked \\Deleted: %q", f)
	}
	// RFC 5232 §5: only the INBOX copy is \Deleted, or the filed one
	// would be lost at the next expunge.
	if f := fileHas(t, bills, "meeting"); strings.Contains(f, ":2,") && strings.Contains(f[strings.LastIndex(f, ":2,"):], "T") {
		t.Fatalf("the filed copy is marked \\Deleted too (per-action flags): %s", f)
	}
	if fileHas(t, inbox, "Subject: big") != "" || fileHas(t, bills, "Subject: big") != "" {
		t.Fatal("the big message was not discarded")
	}
	if fileHas(t, inbox, "Subject: hello") == "" || fileHas(t, inbox, "invoice 42") != "" {
		t.Fatal("INBOX: want only the unmatched message and boss's copy")
	}

	// Move the discard rule to the top, disable it, then delete rule 1.
	b.submit(`#rules tbody tr:nth-child(3) button[value=up]`)
	b.submit(`#rules tbody tr:nth-child(2) button[value=up]`)
	if first := b.text("#rules tbody tr:nth-child(1) td:nth-child(2)"); !strings.Contains(first, "<img") {
		t.Fatalf("first rule after moving up twice: %q", first)
	}
	b.submit(`#rules tbody tr:nth-child(1) button[value=disable]`)
	b.submit(`#rules tbody tr:nth-child(2) button[value=delete]`)
	b.shot("filters-edited")
	rows := b.text("#rules")
	if strings.Contains(rows, "bills") || !strings.Contains(rows, "disabled") || !strings.Contains(rows, "boss") {
		t.Fatalf("rules after disable/delete: %q", rows)
	}
	lmtpDeliver(t, s, "big@example.com", "alice@example.org", "From: big@example.com\nSubject: big again\n\n"+strings.Repeat(strings.Repeat("x", 70)+"\n", 30))
	lmtpDeliver(t, s, "shop@example.com", "alice@example.org", "From: shop@example.com\nSubject: Your invoice 43\n\nshort\n")
	inbox = folderFiles(t, dir, "alice", "")
	if fileHas(t, inbox, "big again") == "" || fileHas(t, inbox, "invoice 43") == "" {
		t.Fatal("a disabled or deleted rule still acts")
	}

	// The script is a normal one in the ManageSieve storage, active.
	script, err := os.ReadFile(filepath.Join(dir, "mail", "alice", "sieve", "mailmig-web.sieve"))
	if err != nil {
		t.Fatal(err)
	}
	if link, _ := os.Readlink(filepath.Join(dir, "mail", "alice", ".dovecot.sieve")); !strings.Contains(link, "mailmig-web.sieve") {
		t.Fatalf("active link %q", link)
	}
	// Round trip through ManageSieve with sieve-connect: download, upload
	// under another name, activate; the page still reads its rules.
	msAddr := s.Addr("managesieve")
	got := filepath.Join(t.TempDir(), "got.sieve")
	for _, args := range [][]string{
		{"--download", "--remotesieve", "mailmig-web", "--localsieve", got},
		{"--upload", "--remotesieve", "copied", "--localsieve", got},
		{"--activate", "--remotesieve", "copied"},
	} {
		if out, code := sieveConnect(t, msAddr, "alice", "alice-pass-1", args...); code != 0 {
			t.Fatalf("sieve-connect %v: exit %d\n%s", args, code, out)
		}
	}
	if b2, _ := os.ReadFile(got); string(b2) != string(script) {
		t.Fatalf("downloaded script differs from the stored one")
	}
	b.open("/filters")
	if rows := b.text("#rules"); !strings.Contains(rows, "boss") {
		t.Fatalf("after the ManageSieve round trip the page lost its rules: %q", rows)
	}

	// A script the page did not write is shown read-only until replaced.
	foreign := filepath.Join(t.TempDir(), "f.sieve")
	os.WriteFile(foreign, []byte("require \"fileinto\";\nif header :contains \"subject\" \"x\" { fileinto \"INBOX\"; }\n"), 0o644)
	for _, args := range [][]string{{"--upload", "--remotesieve", "handmade", "--localsieve", foreign}, {"--activate", "--remotesieve", "handmade"}} {
		if out, code := sieveConnect(t, msAddr, "alice", "alice-pass-1", args...); code != 0 {
			t.Fatalf("sieve-connect %v: exit %d\n%s", args, code, out)
		}
	}
	b.open("/filters")
	b.shot("filters-foreign")
	if !strings.Contains(b.text("#foreign"), `fileinto "INBOX"`) {
		t.Fatal("foreign script not shown")
	}
	b.fill("form[action='/filters/replace']", map[string]string{"confirm": "on"})
	b.submit("#replace")
	if !strings.Contains(b.text(".flash"), "now active") {
		t.Fatalf("replace: %q", b.text(".flash"))
	}
}

// TestWebVacationAndPassword: the automatic reply form makes a vacation
// the delivery answers; the password form changes the account password.
func TestWebVacationAndPassword(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "bob", "bob-pass-12")
	s := startServe(t, dir)
	b := newBrowser(t, "https://"+s.Addr("web"))
	b.login("bob", "bob-pass-12")
	b.open("/vacation")
	b.fill("#vacationform", map[string]string{"enabled": "on", "subject": "Out of office", "days": "3",
		"addresses": "bob@example.org, robert@example.org", "text": "I am away until Monday.\n..dots stay"})
	b.shot("vacation-form")
	b.submit("#savevacation")
	if !strings.Contains(b.text(".flash"), "is on") {
		t.Fatalf("vacation: %q", b.text(".flash"))
	}
	lmtpDeliver(t, s, "carol@example.com", "bob@example.org", "From: carol@example.com\nTo: bob@example.org\nSubject: question\nMessage-ID: <q1@example.com>\n\nhi\n")
	// The reply waits in the outgoing queue (no smarthost in --data).
	reply := waitSpoolHas(t, filepath.Join(dir, "outbound"), "Out of office")
	if !strings.Contains(reply, "I am away until Monday.") || !strings.Contains(reply, "..dots stay") || !strings.Contains(reply, "carol@example.com") {
		t.Fatalf("vacation reply:\n%s", reply)
	}

	b.open("/password")
	b.fill("#passwordform", map[string]string{"old": "bob-pass-12", "new": "bob-new-pass-34", "again": "bob-new-pass-34"})
	b.submit("#changepassword")
	if !strings.Contains(b.text(".flash"), "has been changed") {
		t.Fatalf("password: %q", b.text(".flash"))
	}
	b.shot("password-changed")
	if err := imapTryLogin(s.Addr("imap"), "bob", "bob-new-pass-34"); err != nil {
		t.Fatalf("IMAP login with the new password: %v", err)
	}
	if err := imapTryLogin(s.Addr("imap"), "bob", "bob-pass-12"); err == nil {
		t.Fatal("the old password still works")
	}
}

// waitSpoolHas waits for a file below dir containing substr.
func waitSpoolHas(t *testing.T, dir, substr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var found string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && found == "" {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), substr) {
					found = string(b)
				}
			}
			return nil
		})
		if found != "" {
			return found
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing with %q in %s", substr, dir)
	return ""
}

// imapTryLogin tries a LOGIN on the trusted loopback IMAP listener.
func imapTryLogin(addr, user, pass string) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Login(user, pass).Wait()
}

// TestWebDashboard: the postmaster enqueues, watches and stops users;
// others are refused the dashboard.
func TestWebDashboard(t *testing.T) {
	dir := t.TempDir()
	addOldUsers(t, dir, "dora", "emil")
	os.WriteFile(filepath.Join(dir, "old", "spool", "dora"), []byte("From a@b Mon Jan  5 10:00:00 2009\nSubject: old\n\nold mail\n"), 0o600)
	createUser(t, dir, "postmaster", "pm-pass-123")
	createUser(t, dir, "dora", "dora-pass-1")
	s := startServe(t, dir)
	b := newBrowser(t, "https://"+s.Addr("web"))
	b.login("dora", "dora-pass-1")
	b.open("/admin")
	if body := b.text("body"); !strings.Contains(body, "for the postmaster") {
		t.Fatalf("a user sees the dashboard: %q", body)
	}
	b.open("/filters")
	b.run(chromedp.Click(chromedp.CSS(`header button`)), chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)))

	b.login("postmaster", "pm-pass-123")
	b.open("/admin")
	b.fill("#enqueueform", map[string]string{"users": "dora emil nosuchuser"})
	b.submit("#enqueue")
	flash := b.text(".flash")
	if !strings.Contains(flash, "dora: queued") || !strings.Contains(flash, "emil: queued") || !strings.Contains(flash, "nosuchuser: unknown user") {
		t.Fatalf("enqueue: %q", flash)
	}
	if st := mustMailmig(t, dir, "status", "dora"); !strings.Contains(st, "queued") {
		t.Fatalf("CLI status after web enqueue: %s", st)
	}
	// A real pass of the runner while the page watches.
	mustMailmig(t, dir, "run", "--once", "--no-progress")
	// The confirmation points to the page that sets mail programs up.
	if conf := fileHas(t, folderFiles(t, dir, "dora", ""), "Message-ID: <mailmig.confirm"); conf == "" {
		t.Fatal("no confirmation mail for dora")
	} else if b, _ := os.ReadFile(conf); !strings.Contains(string(b), "https://localhost/setup") {
		t.Fatalf("the confirmation does not point to the set-up page:\n%s", b)
	}
	b.open("/admin")
	b.shot("dashboard")
	if q := b.text("#queue"); !strings.Contains(q, "dora") || !strings.Contains(q, "confirm") {
		t.Fatalf("queue table: %q", q)
	}
	b.open("/admin/user?u=dora")
	b.submit("#stop")
	b.shot("dashboard-user")
	if !strings.Contains(b.text(".flash"), "no more mail") {
		t.Fatalf("stop: %q", b.text(".flash"))
	}
	if ev := mustMailmig(t, dir, "events", "dora"); !strings.Contains(ev, "web:postmaster") {
		t.Fatalf("events do not name the web actor:\n%s", ev)
	}
	b.submit("#retry")
	if !strings.Contains(b.text(".flash"), "not needs-attention") {
		t.Fatalf("retry of a user not in needs-attention: %q", b.text(".flash"))
	}
}

// TestWebSecurity: CSRF, session fixation, cookie flags and headers,
// checked with a plain HTTP client against the real binary.
func TestWebSecurity(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pass-1")
	s := startServe(t, dir)
	base := "https://" + s.Addr("web")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
	u, _ := url.Parse(base)
	// Session fixation: a planted cookie is not the session after login.
	jar.SetCookies(u, []*http.Cookie{{Name: "__Host-mailmig", Value: "planted", Path: "/"}})
	resp, err := c.PostForm(base+"/login", url.Values{"user": {"alice"}, "password": {"alice-pass-1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sid string
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-mailmig" {
			sid = ck.Value
			if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 {
				t.Fatalf("cookie flags: %+v", ck)
			}
		}
	}
	if sid == "" || sid == "planted" {
		t.Fatalf("login kept the planted session id (%q)", sid)
	}
	// CSRF: a logged-in POST without the token changes nothing.
	resp, err = c.PostForm(base+"/filters/save", url.Values{"index": {"-1"}, "name": {"csrf"}, "act_0": {"discard"}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %s", resp.Status)
	}
	if _, err := os.Stat(filepath.Join(dir, "mail", "alice", "sieve", "mailmig-web.sieve")); err == nil {
		t.Fatal("a POST without the CSRF token wrote a script")
	}
	resp, err = c.PostForm(base+"/filters/save", url.Values{"csrf": {"wrong"}, "index": {"-1"}, "name": {"csrf"}, "act_0": {"discard"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token: %s", resp.Status)
	}
	// Headers.
	resp, err = c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatal("no X-Frame-Options")
	}
	// Brute force: wrong passwords are throttled like IMAP's (each
	// failure answered after a delay).
	start := time.Now()
	for i := 0; i < 2; i++ {
		resp, err := c.PostForm(base+"/login", url.Values{"user": {"alice"}, "password": {"wrong"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %s", resp.Status)
		}
	}
	if time.Since(start) < time.Second {
		t.Fatalf("two wrong passwords answered in %v: no failure delay", time.Since(start))
	}
}

// TestWebAutoconfig: the documents clients fetch, parsed as they parse
// them, name the servers the confirmation mail names; `config dns`
// prints the matching SRV records.
func TestWebAutoconfig(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	base := "https://" + s.Addr("web")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
	for _, path := range []string{"/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"} {
		resp, err := c.Get(base + path + "?emailaddress=alice%40example.org")
		if err != nil {
			t.Fatal(err)
		}
		var cc struct {
			Provider struct {
				Domain   string `xml:"domain"`
				Incoming []struct {
					Type       string `xml:"type,attr"`
					Hostname   string `xml:"hostname"`
					SocketType string `xml:"socketType"`
					Username   string `xml:"username"`
					Port       int    `xml:"port"`
				} `xml:"incomingServer"`
				Outgoing []struct {
					Type       string `xml:"type,attr"`
					Hostname   string `xml:"hostname"`
					SocketType string `xml:"socketType"`
					Port       int    `xml:"port"`
				} `xml:"outgoingServer"`
			} `xml:"emailProvider"`
		}
		err = xml.NewDecoder(resp.Body).Decode(&cc)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		p := cc.Provider
		if p.Domain != "example.org" || len(p.Incoming) != 2 || p.Incoming[0].Port != 993 || p.Incoming[0].SocketType != "SSL" ||
			p.Incoming[0].Username != "%EMAILLOCALPART%" || len(p.Outgoing) != 2 || p.Outgoing[1].Port != 587 || p.Outgoing[1].SocketType != "STARTTLS" {
			t.Fatalf("%s: %+v", path, cc)
		}
	}
	body := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	resp, err := c.Post(base+"/autodiscover/autodiscover.xml", "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var ad struct {
		Response struct {
			Account struct {
				Protocol []struct {
					Type, Server, LoginName, SSL string
					Port                         int
				}
			}
		}
	}
	err = xml.NewDecoder(resp.Body).Decode(&ad)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ps := ad.Response.Account.Protocol
	if len(ps) != 2 || ps[0].Type != "IMAP" || ps[0].Port != 993 || ps[0].LoginName != "alice" || ps[1].Type != "SMTP" || ps[1].Port != 465 {
		t.Fatalf("autodiscover: %+v", ad)
	}
	resp, err = c.Post(base+"/autodiscover/autodiscover.xml", "text/xml", strings.NewReader(strings.Replace(body, "example.org", "other.example", 1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("autodiscover for a foreign domain: %s", resp.Status)
	}
	dns := mustMailmig(t, dir, "config", "dns")
	for _, want := range []string{"_imaps._tcp.example.org.\t3600 IN SRV 0 1 993 localhost.", "_submission._tcp.example.org.\t3600 IN SRV 0 1 587 localhost.", "_sieve._tcp.example.org.\t3600 IN SRV 0 1 4190 localhost.", "autoconfig.example.org.\t3600 IN CNAME localhost."} {
		if !strings.Contains(dns, want) {
			t.Errorf("config dns lacks %q:\n%s", want, dns)
		}
	}
}

// TestWebSharing: a user shares a folder on the page; the other user's
// IMAP LIST shows it under shared/, GETACL names the rights, and taking
// the share back removes it.
func TestWebSharing(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pass-1")
	createUser(t, dir, "bob", "bob-pass-12")
	s := startServe(t, dir)
	ac := imapLogin(t, s.Addr("imap"), "alice", "alice-pass-1")
	if err := ac.Create("Projects/2009", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "https://"+s.Addr("web"))
	b.login("alice", "alice-pass-1")
	b.open("/folders")
	b.fill("#shareform", map[string]string{"folder": "Projects/2009", "who": "bob", "level": "read"})
	b.submit("#share")
	if f := b.text(".flash"); !strings.Contains(f, "shared/alice/Projects/2009") {
		t.Fatalf("share: %q", f)
	}
	b.shot("folders-shared")
	if row := b.text("#foldertable"); !strings.Contains(row, "bob may see the folder, read messages, keep read/unread (lrs)") {
		t.Fatalf("folder table: %q", row)
	}
	acl, err := ac.GetACL("Projects/2009").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(acl.Rights["bob"]); got != "lrs" {
		t.Fatalf("GETACL: bob has %q (%v)", got, acl.Rights)
	}
	listNames := func() []string {
		bc := imapLogin(t, s.Addr("imap"), "bob", "bob-pass-12")
		defer bc.Close()
		l, err := bc.List("", "*", nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range l {
			names = append(names, m.Mailbox)
		}
		return names
	}
	if names := strings.Join(listNames(), " "); !strings.Contains(names, "shared/alice/Projects/2009") {
		t.Fatalf("bob's LIST after the share: %s", names)
	}
	b.fill("#shareform", map[string]string{"folder": "Projects/2009", "who": "bob", "level": "none"})
	b.submit("#share")
	if names := strings.Join(listNames(), " "); strings.Contains(names, "shared/alice/Projects") {
		t.Fatalf("bob's LIST after the share was taken back: %s", names)
	}
	// Identifiers that would inject a line into dovecot-acl are refused.
	b.fill("#shareform", map[string]string{"folder": "Projects/2009", "who": "eve lrswipkxtea", "level": "read"})
	b.submit("#share")
	if f := b.text(".flash"); !strings.Contains(f, "is not a user name") {
		t.Fatalf("bad identifier: %q", f)
	}
}
