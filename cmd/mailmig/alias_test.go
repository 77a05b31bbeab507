package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmig/server/outbound/outboundtest"
)

const testAliases = `# site aliases (issue 9 item 3)
postmaster: root
root: bob
Alice.Liddell: alice
staff: alice,
	bob, carol@remote.test
`

// TestAliasesEverywhere: the [aliases] file reaches LMTP (postmaster@,
// first.last@, a list with an external member), submission's local
// delivery and sender check (an alias of one user alone), Sieve
// vacation's own-address check, `mailmig alias list|check`, and SIGHUP.
func TestAliasesEverywhere(t *testing.T) {
	requireTool(t, "swaks")
	requireTool(t, "sieve-connect")
	sink := outboundtest.Start(t, outboundtest.Options{})
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	createUser(t, dir, "bob", "bob-pw")
	aliasFile := filepath.Join(dir, "aliases")
	must(t, os.WriteFile(aliasFile, []byte(testAliases), 0o644))
	cfg := "[aliases]\nfile = \"" + aliasFile + "\"\n[submission]\nsmarthost_starttls = false\nlisteners = [\n  { address = \"127.0.0.1:0\", tls = \"starttls\", trusted = false },\n]\n"
	s := startServeConfig(t, dir, cfg, "--smarthost", sink.Addr)
	waitLog(t, s, "mailmig serving") // signal handlers installed
	if strings.Contains(s.Log(), "postmaster@ is not deliverable") {
		t.Errorf("postmaster reported undeliverable:\n%s", s.Log())
	}

	mdir := t.TempDir()
	replies := pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{
		{From: "dora@remote.test", Rcpts: []string{"postmaster@example.org"}, File: writeMail(t, mdir, "pm", "dora@remote.test", "postmaster@example.org", "to postmaster")},
		{From: "dora@remote.test", Rcpts: []string{"Alice.Liddell@example.org"}, File: writeMail(t, mdir, "fl", "dora@remote.test", "Alice.Liddell@example.org", "to first.last")},
		{From: "dora@remote.test", Rcpts: []string{"staff@example.org", "nobody@example.org"}, File: writeMail(t, mdir, "st", "dora@remote.test", "staff@example.org", "to staff")},
	})
	for i, want := range []map[string]int{
		{"postmaster@example.org": 250}, {"Alice.Liddell@example.org": 250},
		{"staff@example.org": 250, "nobody@example.org": 550},
	} {
		for rcpt, code := range want {
			if replies[i][rcpt].Code != code {
				t.Errorf("LMTP %s: %+v, want %d", rcpt, replies[i][rcpt], code)
			}
		}
	}
	waitMaildir(t, dir, "bob", 10*time.Second, "Subject: to postmaster")
	waitMaildir(t, dir, "alice", 10*time.Second, "Subject: to first.last")
	waitMaildir(t, dir, "alice", 10*time.Second, "Subject: to staff")
	waitMaildir(t, dir, "bob", 10*time.Second, "Subject: to staff")
	msgs := sink.Wait(1, 15*time.Second)
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "carol@remote.test" || !outboundtest.Contains(msgs, "Subject: to staff") {
		t.Fatalf("the list's external member got %+v\n%s", msgs, s.Log())
	}

	// Submission: local delivery to postmaster@; alice may send as her
	// alias, bob may not, nobody may send as the list.
	sub := s.Addr("submission")
	send := func(user, from, to, subject string) (string, int) {
		return swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", user, "--auth-password", user+"-pw",
			"--from", from, "--to", to, "--header", "Subject: "+subject)
	}
	if out, code := send("alice", "Alice.Liddell@example.org", "postmaster@example.org", "as first.last"); code != 0 {
		t.Fatalf("alice as Alice.Liddell@ to postmaster@: exit %d\n%s", code, out)
	}
	waitMaildir(t, dir, "bob", 10*time.Second, "Subject: as first.last")
	for _, tc := range []struct{ user, from string }{{"bob", "alice.liddell@example.org"}, {"alice", "staff@example.org"}} {
		out, code := send(tc.user, tc.from, "alice@example.org", "refused")
		if code == 0 || !strings.Contains(out, "553 5.7.1") {
			t.Errorf("%s as %s: exit %d, want 553 5.7.1\n%s", tc.user, tc.from, code, out)
		}
	}

	// Vacation: a message addressed (in To:) to alice's alias only is
	// answered; her alias is her own address (RFC 5230 §4.5).
	p := filepath.Join(t.TempDir(), "away.sieve")
	must(t, os.WriteFile(p, []byte("require \"vacation\";\nvacation :days 1 \"I am away.\";\n"), 0o644))
	if out, code := sieveConnect(t, s.Addr("managesieve"), "alice", "alice-pw", "--upload", "--localsieve", p, "--remotesieve", "away"); code != 0 {
		t.Fatalf("upload: exit %d\n%s", code, out)
	}
	if out, code := sieveConnect(t, s.Addr("managesieve"), "alice", "alice-pw", "--activate", "--remotesieve", "away"); code != 0 {
		t.Fatalf("activate: exit %d\n%s", code, out)
	}
	replies = pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{{From: "erin@remote.test", Rcpts: []string{"alice@example.org"},
		File: writeMail(t, mdir, "vac", "erin@remote.test", "Alice Liddell <alice.liddell@example.org>", "holiday?")}})
	if replies[0]["alice@example.org"].Code != 250 {
		t.Fatalf("LMTP: %+v", replies[0])
	}
	msgs = sink.Wait(2, 15*time.Second)
	if len(msgs) != 2 || len(msgs[1].To) != 1 || msgs[1].To[0] != "erin@remote.test" || msgs[1].From != "" {
		t.Fatalf("no vacation reply for mail to alice's alias: %+v\n%s", msgs, s.Log())
	}

	// alias list / check.
	out, errs, code := runMailmig(t, dir, "--config", filepath.Join(dir, "test.toml"), "alias", "check", "postmaster@example.org")
	if code != 0 {
		t.Fatalf("alias check: exit %d\n%s\n%s", code, out, errs)
	}
	mustContain(t, "alias check postmaster", out, "alias postmaster ("+aliasFile+" line 2)", "account  bob", "bob may send as postmaster")
	out, _, _ = runMailmig(t, dir, "--config", filepath.Join(dir, "test.toml"), "alias", "check", "staff")
	mustContain(t, "alias check staff", out, "account  alice", "account  bob", "forward  carol@remote.test")
	if _, _, code := runMailmig(t, dir, "--config", filepath.Join(dir, "test.toml"), "alias", "check", "nobody@example.org"); code != 1 {
		t.Errorf("alias check nobody: exit %d, want 1", code)
	}
	out, _, _ = runMailmig(t, dir, "--config", filepath.Join(dir, "test.toml"), "alias", "list")
	mustContain(t, "alias list", out, "alice.liddell", "staff", "carol@remote.test")

	// SIGHUP re-reads the file: a new alias works without a restart, and
	// a broken file keeps the running map.
	replies = pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{{From: "dora@remote.test", Rcpts: []string{"b.builder@example.org"}, File: writeMail(t, mdir, "bb0", "dora@remote.test", "b.builder@example.org", "before")}})
	if replies[0]["b.builder@example.org"].Code != 550 {
		t.Fatalf("b.builder before the reload: %+v", replies[0])
	}
	must(t, os.WriteFile(aliasFile, []byte(testAliases+"b.builder: bob\n"), 0o644))
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, s, "aliases re-read")
	replies = pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{{From: "dora@remote.test", Rcpts: []string{"b.builder@example.org"}, File: writeMail(t, mdir, "bb1", "dora@remote.test", "b.builder@example.org", "after reload")}})
	if replies[0]["b.builder@example.org"].Code != 250 {
		t.Fatalf("b.builder after the reload: %+v\n%s", replies[0], s.Log())
	}
	waitMaildir(t, dir, "bob", 10*time.Second, "Subject: after reload")
	must(t, os.WriteFile(aliasFile, []byte("broken: |/bin/sh\n"), 0o644))
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, s, "alias file refused, keeping the running one")
	replies = pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{{From: "dora@remote.test", Rcpts: []string{"postmaster@example.org"}, File: writeMail(t, mdir, "pm2", "dora@remote.test", "postmaster@example.org", "still there")}})
	if replies[0]["postmaster@example.org"].Code != 250 {
		t.Fatalf("postmaster after a broken reload: %+v", replies[0])
	}
}

// waitLog waits until the server's log contains want.
func waitLog(t *testing.T, s *served, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
