package delivery

import (
	"context"
	"errors"
	"fmt"
	"mailmig/server/msgspool"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const spam = "X-Spam-Level: ******"

func TestGlobalSpamRule(t *testing.T) {
	f := newFixture(t)
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	res := f.mustDeliver("bob@example.org", "alice@example.com", msg(spam, "Subject: buy now"))
	if len(res.Stored) != 1 || res.Stored[0].Folder != "junk" || res.Stored[0].UID != 1 {
		t.Fatalf("spam stored as %+v", res.Stored)
	}
	f.mustDeliver("bob@example.org", "alice@example.com", msg("X-Spam-Level: ****"))
	if got := f.where("alice"); got != "INBOX:2 junk:1" {
		t.Fatalf("where = %q", got)
	}
	subs, err := f.open("alice").Subscriptions()
	if err != nil || !slices.Contains(subs, "junk") {
		t.Fatalf("junk not subscribed: %v %v", subs, err)
	}
}

func TestSpamFolderAndHeaderConfigurable(t *testing.T) {
	f := newFixture(t)
	f.d.SpamFolder = "Spam"
	f.d.SpamHeader = "X-Spam-Flag"
	f.d.SpamThreshold = "YES"
	f.mustDeliver("bob@example.org", "alice@example.com", msg("X-Spam-Flag: YES"))
	f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	if got := f.where("alice"); got != "INBOX:1 Spam:1" {
		t.Fatalf("where = %q", got)
	}
}

func TestGlobalScriptFromFile(t *testing.T) {
	f := newFixture(t)
	p := filepath.Join(t.TempDir(), "global.sieve")
	if err := os.WriteFile(p, []byte(`require ["fileinto", "mailbox"]; if header :is "Subject" "x" { fileinto :create "X"; }`), 0o600); err != nil {
		t.Fatal(err)
	}
	f.d.GlobalScript = p
	if err := f.d.CheckConfig(); err != nil {
		t.Fatal(err)
	}
	f.mustDeliver("bob@example.org", "alice@example.com", msg("Subject: x"))
	f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	if got := f.where("alice"); got != "INBOX:1 X:1" {
		t.Fatalf("where = %q", got)
	}
	g := newFixture(t)
	g.d.GlobalScript = "fileinto \"x\";"
	if err := g.d.CheckConfig(); err == nil {
		t.Fatal("broken global script accepted")
	}
	// A broken global script must not lose mail.
	res := g.mustDeliver("bob@example.org", "alice@example.com", msg())
	if res.ScriptErr == nil || g.where("alice") != "INBOX:1" {
		t.Fatalf("broken global: %+v, %s", res, g.where("alice"))
	}
}

func TestUserScriptReplacesGlobal(t *testing.T) {
	f := newFixture(t)
	f.script("alice", `require ["fileinto", "mailbox"]; if header :contains "Subject" "report" { fileinto :create "Reports"; }`)
	f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	f.mustDeliver("bob@example.org", "alice@example.com", msg("Subject: weekly report"))
	if got := f.where("alice"); got != "INBOX:1 Reports:1" {
		t.Fatalf("user script replaced global: where = %q", got)
	}
}

func TestGlobalBefore(t *testing.T) {
	f := newFixture(t)
	f.d.GlobalBefore = true
	f.script("alice", `require ["fileinto", "imap4flags", "mailbox"]; addflag "\\Flagged"; fileinto :create "Mine";`)
	f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if got := f.where("alice"); got != "Mine:1 junk:1" {
		t.Fatalf("where = %q", got)
	}
	if m := f.folder("alice", "Mine"); !slices.Contains(m[0].Flags, `\Flagged`) {
		t.Errorf("user's flags lost: %v", m[0].Flags)
	}
	if m := f.folder("alice", "junk"); slices.Contains(m[0].Flags, `\Flagged`) {
		t.Errorf("user script ran on spam: %v", m[0].Flags)
	}
}

func TestRuntimeFailureKeepsInInbox(t *testing.T) {
	f := newFixture(t)
	// Six redirects exceed the limit of five: a run-time error after the
	// fileinto has been recorded.
	f.script("alice", `require ["fileinto", "mailbox"]; fileinto :create "Lost";
redirect "a@x.org"; redirect "b@x.org"; redirect "c@x.org";
redirect "d@x.org"; redirect "e@x.org"; redirect "f@x.org";`)
	res := f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	if res.ScriptErr == nil {
		t.Fatal("no script error reported")
	}
	if got := f.where("alice"); got != "INBOX:1" {
		t.Fatalf("where = %q", got)
	}
	if n := len(f.sender.all()); n != 0 {
		t.Fatalf("%d messages sent by a failed script", n)
	}
}

func TestBrokenUserScriptFallsBackToGlobal(t *testing.T) {
	f := newFixture(t)
	f.rawScript("alice", "require \"fileinto\";\nfileinto \"elsewhere\"\n")
	res := f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if res.ScriptErr == nil || f.where("alice") != "INBOX:1" {
		t.Fatalf("res %+v where %s", res, f.where("alice"))
	}
	// The global script runs instead: spam is still filed.
	res = f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	if res.ScriptErr == nil || f.where("alice") != "INBOX:1 junk:1" {
		t.Fatalf("res %+v where %s", res, f.where("alice"))
	}
	// Fixing the script is picked up without a restart.
	f.rawScript("alice", "discard;")
	res = f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if !res.Discarded || res.ScriptErr != nil {
		t.Fatalf("after fix: %+v", res)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	_, err := f.deliver("bob@example.org", "nobody@example.com", msg())
	if !errors.Is(err, ErrUnknownUser) || ExitCode(err) != ExNoUser {
		t.Fatalf("unknown user: %v", err)
	}
	if c, e, _ := SMTPStatus(err); c != 550 || e != [3]int{5, 1, 1} {
		t.Fatalf("unknown user status %d %v", c, e)
	}

	f.d.QuotaFor = func(string) (int64, int64) { return 0, 1 }
	f.mustDeliver("bob@example.org", "carol@example.com", msg())
	_, err = f.deliver("bob@example.org", "carol@example.com", msg())
	if !errors.Is(err, ErrOverQuota) || IsTemporary(err) || ExitCode(err) != ExCantCreat {
		t.Fatalf("over quota: %v", err)
	}
	if c, e, _ := SMTPStatus(err); c != 552 || e != [3]int{5, 2, 2} {
		t.Fatalf("over quota status %d %v", c, e)
	}
	g := newFixture(t)
	g.d.QuotaFor = func(string) (int64, int64) { return 100, 0 }
	g.d.OverQuotaTemporary = true
	_, err = g.deliver("bob@example.org", "carol@example.com", msg())
	if !errors.Is(err, ErrOverQuota) || !IsTemporary(err) || ExitCode(err) != ExTempFail {
		t.Fatalf("temporary over quota: %v", err)
	}
	if c, e, _ := SMTPStatus(err); c != 452 || e != [3]int{4, 2, 2} {
		t.Fatalf("temporary over quota status %d %v", c, e)
	}

	g.d.MaxMessageBytes = 10
	if _, err := g.deliver("bob@example.org", "dave@example.com", msg()); !errors.Is(err, ErrTooBig) {
		t.Fatalf("too big: %v", err)
	}

	h := newFixture(t)
	h.d.MaildirFor = func(string) (string, error) { return "", fmt.Errorf("template broken") }
	_, err = h.deliver("bob@example.org", "erin@example.com", msg())
	if !IsTemporary(err) || ExitCode(err) != ExTempFail {
		t.Fatalf("maildir error: %v", err)
	}
	if c, _, text := SMTPStatus(err); c != 451 || strings.Contains(text, "template") {
		t.Fatalf("temporary status %d %q", c, text)
	}
}

func TestIntercept(t *testing.T) {
	f := newFixture(t)
	var seen []Envelope
	f.d.Intercept = func(_ context.Context, env Envelope, m msgspool.Source) (bool, error) {
		seen = append(seen, env)
		return env.Detail == "confirm", nil
	}
	res := f.mustDeliver("alice@example.com", "postmaster+confirm@example.com", msg())
	if !res.Intercepted || len(res.Stored) != 0 {
		t.Fatalf("intercepted result %+v", res)
	}
	res = f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if res.Intercepted || len(res.Stored) != 1 || len(seen) != 2 {
		t.Fatalf("not intercepted result %+v, seen %v", res, seen)
	}
	f.d.Intercept = func(context.Context, Envelope, msgspool.Source) (bool, error) { return false, errors.New("db down") }
	if _, err := f.deliver("bob@example.org", "alice@example.com", msg()); !IsTemporary(err) {
		t.Fatalf("intercept error: %v", err)
	}
}

func TestConcurrentDeliveries(t *testing.T) {
	f := newFixture(t)
	const n = 40
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			user := []string{"alice", "bob"}[i%2]
			h := ""
			if i%4 < 2 {
				h = spam
			}
			_, err := f.d.Deliver(context.Background(), Envelope{From: "x@example.org", To: user + "@example.com", User: user}, msgspool.Bytes([]byte(msg(h))))
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"alice", "bob"} {
		if got := f.where(u); got != "INBOX:10 junk:10" {
			t.Errorf("%s: %s", u, got)
		}
	}
}

func TestSMTPStatusAndExitCode(t *testing.T) {
	tests := []struct {
		err  error
		code int
		enh  [3]int
		exit int
	}{
		{nil, 250, [3]int{2, 0, 0}, 0},
		{ErrUnknownUser, 550, [3]int{5, 1, 1}, 67},
		{fmt.Errorf("x: %w", ErrOverQuota), 552, [3]int{5, 2, 2}, 73},
		{Temporary(ErrOverQuota), 452, [3]int{4, 2, 2}, 75},
		{&RejectError{Reason: "no\r\nthanks"}, 550, [3]int{5, 7, 1}, 77},
		{ErrTooBig, 552, [3]int{5, 3, 4}, 65},
		{errors.New("disk on fire"), 451, [3]int{4, 3, 0}, 75},
		{context.Canceled, 451, [3]int{4, 4, 2}, 75},
	}
	for _, tt := range tests {
		c, e, text := SMTPStatus(tt.err)
		if c != tt.code || e != tt.enh || ExitCode(tt.err) != tt.exit {
			t.Errorf("%v: %d %v exit %d, want %d %v %d", tt.err, c, e, ExitCode(tt.err), tt.code, tt.enh, tt.exit)
		}
		if strings.ContainsAny(text, "\r") || strings.Contains(text, "fire") {
			t.Errorf("%v: text %q", tt.err, text)
		}
	}
	if _, _, text := SMTPStatus(&RejectError{Reason: "no\r\nthanks"}); text != "no\nthanks" {
		t.Errorf("reject text %q", text)
	}
}

func TestSetGlobal(t *testing.T) {
	f := newFixture(t)
	f.script("alice", `require ["fileinto", "mailbox"]; fileinto :create "Mine";`)
	f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	if err := f.d.SetGlobal(GlobalConfig{Before: true, SpamFolder: "Spam"}); err != nil {
		t.Fatal(err)
	}
	f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	if err := f.d.SetGlobal(GlobalConfig{Script: "fileinto \"x\";"}); err == nil {
		t.Fatal("broken global script accepted")
	}
	// The refused script did not replace the running one.
	f.mustDeliver("bob@example.org", "alice@example.com", msg(spam))
	if got := f.where("alice"); got != "Mine:1 Spam:2" {
		t.Fatalf("where = %q", got)
	}
}

// TestFileintoSharedNamespaceKeeps: fileinto :create of a name in the
// IMAP shared namespace ("shared/kim/INBOX") creates no folder of the
// user's own there (IMAP could not select it) and keeps the message in
// INBOX.
func TestFileintoSharedNamespaceKeeps(t *testing.T) {
	f := newFixture(t)
	f.script("alice", `require ["fileinto", "mailbox"]; fileinto :create "shared/kim/INBOX";`)
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if got := f.where("alice"); got != "INBOX:1" {
		t.Fatalf("where = %q", got)
	}
}
