package main

import (
	"strings"
	"testing"
)

// TestWebSpamRule: rules made on the page keep the site's spam rule (the
// script includes it: by default the site runs its global script only
// for users without one), the page says so, and the user can turn it
// off and on again; real LMTP deliveries show where spam lands.
func TestWebSpamRule(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pass-1")
	s := startServe(t, dir)
	b := newBrowser(t, "https://"+s.Addr("web"))
	b.login("alice", "alice-pass-1")
	b.open("/filters/edit")
	b.fill("#ruleform", map[string]string{"name": "lists", "field_0": "header", "header_0": "List-Id", "op_0": "contains", "value_0": "debian",
		"act_0": "fileinto", "newfolder_0": "Lists"})
	b.submit("#save")
	b.open("/filters")
	b.shot("spam-rule-kept")
	if st := b.text("#spamstate"); !strings.Contains(st, "start with this rule") {
		t.Fatalf("spam rule state: %q", st)
	}
	spam := func(n string) string {
		return "From: seller@example.com\nSubject: cheap " + n + "\nX-Spam-Level: ********\n\nbuy\n"
	}
	lmtpDeliver(t, s, "seller@example.com", "alice@example.org", spam("1"))
	lmtpDeliver(t, s, "list@example.com", "alice@example.org", "From: list@example.com\nList-Id: <devel.lists.debian.org>\nSubject: list\n\nhi\n")
	if fileHas(t, folderFiles(t, dir, "alice", "junk"), "cheap 1") == "" {
		t.Fatalf("with rules of her own, alice's spam is not in junk: INBOX %v", folderFiles(t, dir, "alice", ""))
	}
	if fileHas(t, folderFiles(t, dir, "alice", "Lists"), "Subject: list") == "" {
		t.Fatal("the user's own rule did not run after the spam rule")
	}

	b.submit("#spamoff")
	b.shot("spam-rule-off")
	if f := b.text(".flash"); !strings.Contains(f, "off for you") {
		t.Fatalf("after turning it off: %q", f)
	}
	lmtpDeliver(t, s, "seller@example.com", "alice@example.org", spam("2"))
	if fileHas(t, folderFiles(t, dir, "alice", ""), "cheap 2") == "" {
		t.Fatal("spam rule turned off, but the spam did not stay in INBOX")
	}
	b.open("/filters")
	if st := b.text("#spamstate"); !strings.Contains(st, "turned this rule off") {
		t.Fatalf("spam rule state after off: %q", st)
	}
	if !strings.Contains(b.text("#rules"), "lists") {
		t.Fatal("turning the spam rule off lost the user's rules")
	}
	b.submit("#spamon")
	lmtpDeliver(t, s, "seller@example.com", "alice@example.org", spam("3"))
	if fileHas(t, folderFiles(t, dir, "alice", "junk"), "cheap 3") == "" {
		t.Fatal("spam rule back on, but spam is not in junk")
	}
}
