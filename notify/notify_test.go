package notify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/server/delivery"
	"mailmig/state"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestToken(t *testing.T) {
	good := Token(secret, "alice", "mig1")
	tests := []struct {
		name, tok, user, mig string
		secret               []byte
		want                 bool
	}{
		{"good", good, "alice", "mig1", secret, true},
		{"upper-case mac", strings.ToUpper(good[:macHexLen]) + good[macHexLen:], "alice", "mig1", secret, true},
		{"other user's token", Token(secret, "bob", "mig1"), "alice", "mig1", secret, false},
		{"user swapped in", good[:macHexLen] + "-bob", "bob", "mig1", secret, false},
		{"other migration", good, "alice", "mig2", secret, false},
		{"other secret", good, "alice", "mig1", []byte("x"), false},
		{"flipped digit", flip(good), "alice", "mig1", secret, false},
		{"empty", "", "alice", "mig1", secret, false},
		{"short", good[:10], "alice", "mig1", secret, false},
		{"no migration id", Token(secret, "alice", ""), "alice", "", secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyToken(tt.secret, tt.tok, tt.user, tt.mig); got != tt.want {
				t.Errorf("VerifyToken(%q) = %v, want %v", tt.tok, got, tt.want)
			}
		})
	}
	if a := ReplyAddress("mailmig-confirm", "example.org", secret, "alice", "mig1"); a != "mailmig-confirm+"+good+"@example.org" {
		t.Errorf("ReplyAddress = %q", a)
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[3] == '0' {
		b[3] = '1'
	} else {
		b[3] = '0'
	}
	return string(b)
}

func FuzzParseToken(f *testing.F) {
	f.Add(Token(secret, "alice", "m"))
	f.Add("")
	f.Add(strings.Repeat("0", macHexLen) + "-")
	f.Fuzz(func(t *testing.T, tok string) {
		m, u, err := ParseToken(tok)
		if err != nil {
			return
		}
		if len(m) != macHexLen || u == "" || !strings.HasSuffix(tok, "-"+u) {
			t.Fatalf("ParseToken(%q) = %q, %q", tok, m, u)
		}
		// A token parsed from arbitrary input verifies only if it is the
		// real one.
		if VerifyToken(secret, tok, u, "m") != (strings.ToLower(tok) == strings.ToLower(Token(secret, u, "m")[:macHexLen])+tok[macHexLen:]) {
			t.Fatalf("VerifyToken disagrees with Token for %q", tok)
		}
	})
}

func testData() *Data {
	return &Data{
		User: "alice", Address: "alice@example.org",
		Folders:  []Folder{{"INBOX", 12, 34567}, {"Archiv/2009", 3, 2048}},
		Renamed:  []Rename{{"a.b", "a_b"}, {"M\u00fcll", "M\u00fcll-1"}},
		Messages: 15, Bytes: 36615,
		Client:    Client{IMAPHost: "imap.example.org", IMAPPort: 143, IMAPSPort: 993, SubmissionHost: "smtp.example.org", SubmissionPort: 587, SubmissionsPort: 465, ManageSievePort: 2009},
		CutoverAt: "2009-10-09 12:00 UTC", Postmaster: "postmaster@example.org",
	}
}

func TestRenderShipped(t *testing.T) {
	m := &Mailer{From: "Postmaster <postmaster@example.org>", Hostname: "mail.example.org",
		Now: func() time.Time { return time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC) }}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "de", "fr"} { // fr falls back to en
		for _, k := range []Kind{Confirm, Forced, Final} {
			t.Run(lang+"/"+string(k), func(t *testing.T) {
				d := testData()
				d.Carried = 2
				mail, err := m.Render(k, lang, d, "ctl+tok@example.org", "id1@x")
				if err != nil {
					t.Fatal(err)
				}
				s := string(mail.Bytes)
				for _, want := range []string{"To: alice@example.org\r\n", "Message-ID: <id1@x>\r\n",
					"Auto-Submitted: auto-generated\r\n", "Reply-To: ctl+tok@example.org\r\n", "imap.example.org", "2009"} {
					if !strings.Contains(s, want) {
						t.Errorf("missing %q in\n%s", want, s)
					}
				}
				if k != Final {
					for _, want := range []string{"Archiv/2009", "a.b  ->  a_b", "M\u00fcll  ->  M\u00fcll-1", "143", "993", "587", "465", "33.8 KB"} {
						if !strings.Contains(s, want) {
							t.Errorf("missing %q in\n%s", want, s)
						}
					}
				}
				if strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
					t.Errorf("bare LF in mail")
				}
				if strings.Contains(s, "<no value>") {
					t.Errorf("unfilled template field:\n%s", s)
				}
				if lang == "de" && !strings.Contains(mail.Subject, "Postfach") && !strings.Contains(mail.Subject, "Umzug") {
					t.Errorf("German subject %q", mail.Subject)
				}
			})
		}
	}
}

func TestRenderOverride(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "en"), 0o755)
	os.WriteFile(filepath.Join(dir, "en", "confirm.txt"), []byte(`{{define "subject"}}Moving day for {{.User}}{{end}}Site text {{.Client.IMAPHost}}`+"\n"), 0o644)
	m := &Mailer{TemplatesDir: dir, From: "pm@example.org"}
	mail, err := m.Render(Confirm, "en", testData(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if mail.Subject != "Moving day for alice" || !strings.Contains(string(mail.Bytes), "\r\n\r\nSite text imap.example.org\r\n") {
		t.Errorf("override not used:\n%s", mail.Bytes)
	}
	if strings.Contains(string(mail.Bytes), "Reply-To") {
		t.Errorf("Reply-To without a reply address")
	}
	// Not overridden: shipped.
	if mail, err := m.Render(Final, "en", testData(), "", ""); err != nil || !strings.Contains(mail.Subject, "complete") {
		t.Errorf("final: %v %v", mail, err)
	}
	os.WriteFile(filepath.Join(dir, "en", "final.txt"), []byte("{{.Nope"), 0o644)
	if err := m.Check(); err == nil || !strings.Contains(err.Error(), "final.txt") {
		t.Errorf("Check of broken override: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "en", "final.txt"), []byte("no subject"), 0o644)
	if err := m.Check(); err == nil {
		t.Errorf("Check accepted a template without subject")
	}
}

func TestControl(t *testing.T) {
	ctx := context.Background()
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := db.Enqueue(ctx, u, state.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	path := []state.State{state.Queued, state.Dual, state.Copying, state.Confirm}
	for _, u := range []string{"alice", "bob", "carol"} {
		for i := 1; i < len(path); i++ {
			if err := db.Transition(ctx, u, path[i-1], path[i], "test", ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	get := func(u string) *state.Entry {
		e, err := db.Get(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	c := &Control{LocalPart: "mailmig-confirm", Secret: secret, DB: db}
	tok := func(u string) string { return Token(secret, u, get(u).MigrationID) }
	msg := func(from string, extra string) []byte {
		return []byte("From: " + from + "\r\n" + extra + "Subject: Re: moved\r\n\r\nthanks\r\n")
	}
	env := func(detail string) delivery.Envelope {
		to := "mailmig-confirm@example.org"
		if detail != "" {
			to = "mailmig-confirm+" + detail + "@example.org"
		}
		return delivery.Envelope{From: "x@y", To: to, User: "mailmig-confirm", Detail: detail}
	}
	tests := []struct {
		name     string
		env      delivery.Envelope
		msg      []byte
		stopped  string // user expected to be stopped ("" none)
		reasonIn string
	}{
		{"forged: good From, bad token", env(flip(tok("alice"))), msg("alice@example.org", ""), "", "wrong token"},
		{"no token", env(""), msg("alice@example.org", ""), "", "no token"},
		{"malformed", env("xyz"), msg("alice@example.org", ""), "", "malformed"},
		{"unknown user", env(Token(secret, "mallory", "m")), msg("mallory@example.org", ""), "", "not in the queue"},
		{"bob's mac under alice's name", env(tok("bob")[:macHexLen] + "-alice"), msg("alice@example.org", ""), "", "wrong token"},
		{"auto reply", env(tok("carol")), msg("carol@example.org", "Auto-Submitted: auto-replied\r\n"), "", "automatic"},
		{"Precedence bulk", env(tok("carol")), msg("carol@example.org", "Precedence: Bulk\r\n"), "", "Precedence: bulk"},
		{"Precedence junk", env(tok("carol")), msg("carol@example.org", "Precedence: junk\r\n"), "", "Precedence: junk"},
		{"Precedence list", env(tok("carol")), msg("carol@example.org", "Precedence: list\r\n"), "", "Precedence: list"},
		{"X-Autoreply", env(tok("carol")), msg("carol@example.org", "X-Autoreply: yes\r\n"), "", "X-Autoreply"},
		{"X-Autorespond", env(tok("carol")), msg("carol@example.org", "X-Autorespond: Out of office\r\n"), "", "X-Autorespond"},
		{"Exchange suppress", env(tok("carol")), msg("carol@example.org", "X-Auto-Response-Suppress: All\r\n"), "", "X-Auto-Response-Suppress"},
		{"Exchange OOF", env(tok("carol")), msg("carol@example.org", "X-MS-Exchange-Inbox-Rules-Loop: carol@example.org\r\n"), "", "Rules-Loop"},
		{"list copy", env(tok("carol")), msg("carol@example.org", "List-Id: <staff.example.org>\r\n"), "", "List-Id"},
		{"null sender", delivery.Envelope{From: "", To: "mailmig-confirm+" + tok("carol") + "@example.org", User: "mailmig-confirm", Detail: tok("carol")}, msg("carol@example.org", ""), "", "null envelope sender"},
		{"Auto-Submitted: no is a person", env(tok("carol")), msg("carol@example.org", "Auto-Submitted: no\r\nPrecedence: first-class\r\n"), "carol", ""},
		{"valid", env(tok("alice")), msg("alice@example.org", ""), "alice", ""},
		{"valid, detail only in To", delivery.Envelope{From: "whoever@example.com", To: "<mailmig-confirm+" + tok("bob") + "@example.org>"}, msg("whoever@example.com", ""), "bob", ""},
		{"replay", env(tok("alice")), msg("alice@example.org", ""), "", "already"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]bool{}
			for _, u := range []string{"alice", "bob", "carol"} {
				before[u] = get(u).StopRequested
			}
			handled, err := c.Intercept(ctx, tt.env, tt.msg)
			if err != nil || !handled {
				t.Fatalf("Intercept = %v, %v", handled, err)
			}
			for _, u := range []string{"alice", "bob", "carol"} {
				want := before[u] || u == tt.stopped
				if got := get(u).StopRequested; got != want {
					t.Errorf("%s stop requested = %v, want %v", u, got, want)
				}
			}
			out, _ := c.Handle(ctx, tt.env, tt.msg) // idempotent second look
			if tt.reasonIn != "" && !strings.Contains(out.Reason, tt.reasonIn) {
				t.Errorf("reason %q, want %q", out.Reason, tt.reasonIn)
			}
		})
	}
	// Not for the control address: passed on.
	if handled, err := c.Intercept(ctx, delivery.Envelope{To: "alice@example.org", User: "alice"}, msg("a@b", "")); handled || err != nil {
		t.Errorf("ordinary mail intercepted: %v %v", handled, err)
	}
	evs, err := db.Events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
	}
	if kinds[EventReplyRejected] < 5 || kinds[EventReplyStop] != 3 || kinds[EventReplyAuto] < 10 {
		t.Errorf("events %v", kinds)
	}
	// Replay after done changes nothing.
	for _, s := range [][2]state.State{{state.Confirm, state.Cutover}, {state.Cutover, state.Done}} {
		if err := db.Transition(ctx, "carol", s[0], s[1], "test", ""); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.Handle(ctx, env(tok("carol")), msg("carol@example.org", ""))
	if err != nil || out.Stopped || get("carol").State != state.Done {
		t.Errorf("replay after done: %+v %v", out, err)
	}
}

// FuzzControlRecipient: any envelope parses to a local part without '+'
// and the control address is recognised only by its local part.
func FuzzControlRecipient(f *testing.F) {
	f.Add("mailmig-confirm", "tok", "<mailmig-confirm+tok@example.org>")
	f.Add("", "", "MAILMIG-CONFIRM+x+y@z")
	f.Add("alice", "", "alice@example.org")
	f.Add("", "", "@")
	c := &Control{LocalPart: "mailmig-confirm"}
	f.Fuzz(func(t *testing.T, user, detail, to string) {
		env := delivery.Envelope{User: user, Detail: detail, To: to}
		local, _ := splitRecipient(env)
		if strings.Contains(local, "+") {
			t.Fatalf("local part %q keeps a '+'", local)
		}
		if c.IsControl(env) != strings.EqualFold(local, "mailmig-confirm") {
			t.Fatalf("IsControl disagrees for %+v", env)
		}
		readHeader([]byte(to)) // never panics
	})
}
