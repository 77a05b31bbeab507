package delivery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/server/sieve"
	"mailmig/server/sieve/pigeonholetest"
)

// TestSieveIncludeDuplicateSpamtest: the extensions the own interpreter
// added (include, duplicate, spamtest/spamtestplus/virustest, ihave,
// vacation-seconds) end to end through Deliver.
func TestSieveIncludeDuplicateSpamtest(t *testing.T) {
	spam := "X-Spam-Level: *****"
	tests := []struct {
		name   string
		script string
		msgs   []string // delivered in order
		where  string
		sentTo int
		setup  func(f *fixture)
	}{
		{name: "include :global spam (built-in rule)", script: `require "include"; include :global "spam";`,
			msgs: []string{msg(spam), msg()}, where: "INBOX:1 junk:1"},
		{name: "include :global from the global dir", script: `require "include"; include :global "lists";`,
			msgs: []string{msg("List-Id: <go.example.org>")}, where: "Lists:1",
			setup: func(f *fixture) {
				dir := filepath.Join(f.root, "global")
				os.MkdirAll(dir, 0o755)
				os.WriteFile(filepath.Join(dir, "lists.sieve"), []byte(`require ["fileinto", "mailbox"]; if exists "List-Id" { fileinto :create "Lists"; }`), 0o644)
				f.d.GlobalDir = dir
			}},
		{name: "include :personal with global variables and return", script: `require ["include", "variables", "fileinto", "mailbox"];
global "target"; set "target" "Main"; include "helper"; fileinto :create "${target}";`,
			msgs: []string{msg()}, where: "Helper:1",
			setup: func(f *fixture) {
				if err := f.storage("alice").Put("helper", []byte(`require ["include", "variables"]; global "target"; set "target" "Helper"; return; set "target" "Never";`)); err != nil {
					f.t.Fatal(err)
				}
			}},
		{name: "include :optional missing", script: `require "include"; include :optional "nothere"; discard;`,
			msgs: []string{msg()}, where: ""},
		{name: "duplicate", script: `require ["duplicate", "fileinto", "mailbox"]; if duplicate { fileinto :create "Dups"; }`,
			msgs: []string{msg(), msg()}, where: "Dups:1 INBOX:1"},
		// :seconds 1: the second copy comes 2 s later, the third 4 s
		// after that... each outside the window of the one before.
		{name: "duplicate :seconds", script: `require ["duplicate", "fileinto", "mailbox"]; if duplicate :seconds 1 { fileinto :create "Dups"; }`,
			msgs: []string{msg(), msg(), msg()}, where: "INBOX:3"},
		{name: "spamtest", script: `require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto", "mailbox"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "8" { fileinto :create "Spam8"; }`,
			msgs: []string{msg(spam), msg("X-Spam-Level: **")}, where: "INBOX:1 Spam8:1"},
		{name: "spamtestplus", script: `require ["spamtestplus", "relational", "fileinto", "mailbox"];
if spamtest :percent :value "ge" "50" { fileinto :create "Half"; }`,
			msgs: []string{msg("X-Spam-Level: ***"), msg("X-Spam-Level: *")}, where: "Half:1 INBOX:1"},
		{name: "virustest", script: `require ["virustest", "relational", "fileinto", "mailbox"];
if virustest :value "eq" "5" { fileinto :create "Virus"; }`,
			msgs: []string{msg("X-Virus-Status: infected"), msg("X-Virus-Status: clean")}, where: "INBOX:1 Virus:1",
			setup: func(f *fixture) {
				f.d.Virustest = &sieve.TestConfig{Header: "X-Virus-Status", Type: "text", Text: map[string]int{"clean": 1, "infected": 5}}
			}},
		{name: "ihave", script: `require ["ihave", "fileinto", "mailbox"];
if ihave "enotify" { notify "mailto:x@example.org"; } elsif ihave "fileinto" { fileinto :create "Have"; }`,
			msgs: []string{msg()}, where: "Have:1"},
		{name: "vacation-seconds", script: `require "vacation-seconds"; vacation :seconds 1 "away";`,
			msgs: []string{msg(), msg()}, where: "INBOX:2", sentTo: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			f.script("alice", tt.script)
			for i, m := range tt.msgs {
				res := f.mustDeliver("bob@example.org", "alice@example.com", m)
				if res.ScriptErr != nil {
					t.Fatalf("script error: %v", res.ScriptErr)
				}
				f.now = f.now.Add(2 * 1e9 * time.Duration(i+1))
			}
			if got := f.where("alice"); got != tt.where {
				t.Errorf("where = %q, want %q", got, tt.where)
			}
			if n := len(f.sender.all()); n != tt.sentTo {
				t.Errorf("sent %d, want %d", n, tt.sentTo)
			}
		})
	}
	_ = strings.TrimSpace
}

// TestSpamRuleSameAsReference: the reference set-up's global "spam"
// script is mailmig's built-in rule.
func TestSpamRuleSameAsReference(t *testing.T) {
	if got := DefaultGlobalScript("X-Spam-Level", "*****", "junk"); got != pigeonholetest.SpamRule {
		t.Errorf("built-in spam rule %q, reference %q", got, pigeonholetest.SpamRule)
	}
}
