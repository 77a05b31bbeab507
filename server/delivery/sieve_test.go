package delivery

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"mailmig/server/sieve"
)

// TestSieveExtensions runs one script per advertised extension end to end
// and checks where the message went, with which flags, and what was sent.
func TestSieveExtensions(t *testing.T) {
	tests := []struct {
		ext    string
		script string
		from   string
		to     string
		msg    string
		where  string   // "folder:count ..." of alice's tree, "" = nothing stored
		flags  []string // flags of every stored copy
		sentTo []string // redirect/vacation recipients, in order
		check  func(t *testing.T, f *fixture, res *Result)
	}{
		{ext: "keep", script: `keep;`, where: "INBOX:1"},
		{ext: "discard", script: `discard;`, where: ""},
		{ext: "stop", script: `require ["fileinto", "mailbox"]; stop; fileinto :create "never";`, where: "INBOX:1"},
		// A missing folder is a run-time error (as in pigeonhole): INBOX.
		{ext: "fileinto", script: `require "fileinto"; fileinto "Archive";`, where: "INBOX:1"},
		{ext: "mailbox :create", script: `require ["fileinto", "mailbox"]; fileinto :create "Lists/go";`, where: "Lists/go:1",
			check: func(t *testing.T, f *fixture, _ *Result) {
				subs, _ := f.open("alice").Subscriptions()
				if !slices.Contains(subs, "Lists/go") {
					t.Errorf("created folder not subscribed: %v", subs)
				}
			}},
		{ext: "mailboxexists", script: `require ["fileinto", "mailbox"]; if mailboxexists "Nope" { fileinto "Nope"; } else { fileinto :create "Yes"; }`, where: "Yes:1"},
		{ext: "copy", script: `require ["fileinto", "copy", "mailbox"]; fileinto :copy :create "Copy";`, where: "Copy:1 INBOX:1"},
		{ext: "imap4flags", script: `require ["imap4flags", "fileinto", "mailbox"]; setflag ["\\Seen", "$Label1"]; addflag "\\flagged"; removeflag "$Label1"; fileinto :create "F";`,
			where: "F:1", flags: []string{`\Flagged`, `\Seen`}},
		{ext: "imap4flags :flags", script: `require ["imap4flags"]; keep :flags ["\\Answered", "work"];`, where: "INBOX:1", flags: []string{`\Answered`, "work"}},
		{ext: "envelope", script: `require ["envelope", "fileinto", "mailbox"]; if envelope :is "from" "boss@example.org" { fileinto :create "Boss"; }`,
			from: "boss@example.org", where: "Boss:1"},
		{ext: "subaddress", script: `require ["envelope", "subaddress", "fileinto", "mailbox"]; if envelope :detail "to" "lists" { fileinto :create "Lists"; }`,
			to: "alice+lists@example.com", where: "Lists:1"},
		{ext: "body", script: `require ["body", "fileinto", "mailbox"]; if body :text :contains "the body" { fileinto :create "Body"; }`, where: "Body:1"},
		{ext: "relational", script: `require ["relational", "comparator-i;ascii-numeric", "fileinto", "mailbox"];
if header :value "ge" :comparator "i;ascii-numeric" "X-Priority" "3" { fileinto :create "Low"; }
if header :count "eq" :comparator "i;ascii-numeric" "Received" "2" { fileinto :create "Two"; }`,
			msg: msg("X-Priority: 5", "Received: a", "Received: b"), where: "Low:1 Two:1"},
		{ext: "variables", script: `require ["variables", "fileinto", "mailbox"]; if header :matches "Subject" "[*] *" { set :lower "list" "${1}"; fileinto :create "${list}"; }`,
			msg: msg("Subject: [Golang-Nuts] hi"), where: "golang-nuts:1"},
		{ext: "regex", script: `require ["regex", "variables", "fileinto", "mailbox"]; if header :regex "Subject" "^Re: \\[([a-z]+)\\]" { fileinto :create "re-${1}"; }`,
			msg: msg("Subject: Re: [dev] x"), where: "re-dev:1"},
		{ext: "date", script: `require ["date", "relational", "fileinto", "mailbox"]; if date :value "ge" "date" "year" "2026" { fileinto :create "Recent"; }`, where: "Recent:1"},
		{ext: "index", script: `require ["date", "index", "fileinto", "mailbox"]; if date :index 2 :is "X-Date" "year" "2001" { fileinto :create "Idx"; }`,
			msg: msg("X-Date: Sat, 1 Jan 2000 10:00:00 +0000", "X-Date: Mon, 1 Jan 2001 10:00:00 +0000"), where: "Idx:1"},
		{ext: "currentdate", script: `require ["date", "relational", "fileinto", "mailbox"]; if currentdate :value "ge" "year" "2000" { fileinto :create "Now"; }`, where: "Now:1"},
		{ext: "encoded-character", script: `require ["encoded-character", "fileinto", "mailbox"]; if header :is "Subject" "${hex:68 65 6c 6c 6f}" { fileinto :create "Enc"; }`, where: "Enc:1"},
		{ext: "comparator-i;octet", script: `require ["fileinto", "mailbox"]; if header :is :comparator "i;octet" "Subject" "HELLO" { fileinto :create "Case"; }`, where: "INBOX:1"},
		{ext: "comparator-i;unicode-casemap", script: `require ["comparator-i;unicode-casemap", "fileinto", "mailbox"]; if header :is :comparator "i;unicode-casemap" "Subject" "HELLO" { fileinto :create "Fold"; }`, where: "Fold:1"},
		{ext: "editheader", script: `require "editheader"; addheader "X-Filtered" "yes"; deleteheader "X-Remove-Me"; addheader :last "X-Last" "été";`,
			msg: msg("X-Remove-Me: 1"), where: "INBOX:1",
			check: func(t *testing.T, f *fixture, _ *Result) {
				b := f.folder("alice", "INBOX")[0].Body
				if !strings.HasPrefix(b, "X-Filtered: yes\r\n") || strings.Contains(b, "X-Remove-Me") ||
					!strings.Contains(b, "X-Last: =?utf-8?q?=C3=A9t=C3=A9?=\r\n\r\nHello") {
					t.Errorf("edited message:\n%s", b)
				}
			}},
		{ext: "redirect", script: `redirect "carol@example.net";`, where: "", sentTo: []string{"carol@example.net"},
			check: func(t *testing.T, f *fixture, res *Result) {
				s := f.sender.all()[0]
				if s.From != "bob@example.org" || !strings.HasPrefix(s.Msg, "X-Sieve-Redirected-From: <alice@example.com>\r\nFrom: Bob") {
					t.Errorf("redirect sent %+v", s)
				}
				if !slices.Equal(res.Redirected, []string{"carol@example.net"}) || res.Discarded {
					t.Errorf("result %+v", res)
				}
			}},
		{ext: "redirect :copy", script: `require "copy"; redirect :copy "carol@example.net";`, where: "INBOX:1", sentTo: []string{"carol@example.net"}},
		{ext: "redirect loop", script: `redirect "carol@example.net";`, msg: msg("X-Sieve-Redirected-From: <alice@example.com>"), where: "INBOX:1"},
		{ext: "vacation", script: `require "vacation"; vacation :days 7 :subject "Away" "I am away.";`, where: "INBOX:1", sentTo: []string{"bob@example.org"}},
		{ext: "vacation null sender", script: `require ["vacation", "fileinto", "mailbox"]; vacation "away"; fileinto :create "After";`, from: "<>", where: "After:1"},
	}
	for _, tt := range tests {
		t.Run(tt.ext, func(t *testing.T) {
			f := newFixture(t)
			f.script("alice", tt.script)
			from, to, m := tt.from, tt.to, tt.msg
			if from == "" {
				from = "bob@example.org"
			} else if from == "<>" {
				from = ""
			}
			if to == "" {
				to = "alice@example.com"
			}
			if m == "" {
				m = msg()
			}
			res := f.mustDeliver(from, to, m)
			if tt.ext == "fileinto" {
				if res.ScriptErr == nil || !strings.Contains(res.ScriptErr.Error(), "Mailbox doesn't exist") {
					t.Errorf("script error %v, want the missing mailbox", res.ScriptErr)
				}
			} else if res.ScriptErr != nil {
				t.Fatalf("script error: %v", res.ScriptErr)
			}
			if got := f.where("alice"); got != tt.where {
				t.Errorf("where = %q, want %q", got, tt.where)
			}
			// Every stored copy carries exactly the expected flags.
			if (tt.where == "") != (len(res.Stored) == 0) {
				t.Errorf("stored %+v, want where %q", res.Stored, tt.where)
			}
			for _, c := range res.Stored {
				msgs := f.folder("alice", c.Folder)
				if len(msgs) == 0 {
					t.Fatalf("copy in %s not found", c.Folder)
				}
				if got := msgs[len(msgs)-1].Flags; !slices.Equal(got, tt.flags) {
					t.Errorf("%s: flags = %q, want %q", c.Folder, got, tt.flags)
				}
			}
			var sentTo []string
			for _, s := range f.sender.all() {
				sentTo = append(sentTo, s.To...)
			}
			if !slices.Equal(sentTo, tt.sentTo) {
				t.Errorf("sent to %v, want %v", sentTo, tt.sentTo)
			}
			if tt.check != nil {
				tt.check(t, f, res)
			}
		})
	}
}

func TestEveryAdvertisedExtensionIsTested(t *testing.T) {
	// Keep this list in step with TestSieveExtensions: each advertised
	// extension has a behaviour test there or in TestReject.
	tested := []string{"fileinto", "reject", "ereject", "envelope", "encoded-character",
		"comparator-i;octet", "comparator-i;ascii-casemap", "comparator-i;ascii-numeric",
		"comparator-i;unicode-casemap", "imap4flags", "variables", "relational", "vacation",
		"copy", "regex", "date", "index", "editheader", "mailbox", "subaddress", "body",
		// TestSieveIncludeDuplicateSpamtest:
		"vacation-seconds", "include", "duplicate", "spamtest", "spamtestplus", "virustest", "ihave"}
	for _, e := range sieve.Extensions() {
		if !slices.Contains(tested, e) {
			t.Errorf("extension %q is advertised but has no behaviour test", e)
		}
	}
}

func TestReject(t *testing.T) {
	for _, tt := range []struct {
		script   string
		reason   string
		extended bool
	}{
		{`require "reject"; if header :contains "Subject" "hello" { reject "Not interested."; }`, "Not interested.", false},
		{`require ["ereject", "variables"]; set "n" "Alice"; ereject "${n} does not take mail";`, "Alice does not take mail", true},
		{"require \"reject\";\nreject text:\nline one\nline two\n.\n;", "line one\r\nline two\r\n", false},
	} {
		f := newFixture(t)
		f.script("alice", tt.script)
		_, err := f.deliver("bob@example.org", "alice@example.com", msg())
		var re *RejectError
		if !errors.As(err, &re) || re.Reason != tt.reason || re.Extended != tt.extended {
			t.Fatalf("%s: err %v", tt.script, err)
		}
		code, enh, text := SMTPStatus(err)
		if code != 550 || enh != [3]int{5, 7, 1} || !strings.Contains(text, strings.TrimSpace(strings.Split(tt.reason, "\r\n")[0])) {
			t.Errorf("status %d %v %q", code, enh, text)
		}
		if ExitCode(err) != ExNoPerm {
			t.Errorf("exit %d", ExitCode(err))
		}
		if got := f.where("alice"); got != "" {
			t.Errorf("rejected message stored: %s", got)
		}
	}
}

// FuzzDeliver runs arbitrary messages through a script using most
// extensions: delivery must never fail for a local reason nor lose the
// message (stored somewhere, or refused with a typed error).
func FuzzDeliver(f *testing.F) {
	f.Add([]byte(msg()))
	f.Add([]byte(msg(spam, "List-Id: <x>", "Subject: =?utf-8?q?=C3=A9t=C3=A9?=")))
	f.Add([]byte("no header at all"))
	f.Add([]byte("Subject: x\n\n--b\nContent-Type: text/plain\n\nbody\n--b--\n"))
	f.Fuzz(func(t *testing.T, m []byte) {
		fx := newFixture(t)
		fx.script("alice", `require ["fileinto", "mailbox", "body", "editheader", "vacation", "imap4flags", "regex", "variables", "reject"];
if body :text :contains "reject" { reject "no"; stop; }
if header :regex "Subject" "^(.*)$" { set "s" "${1}"; addheader "X-Subject" "${s}"; }
if header :contains "X-Spam-Level" "*****" { fileinto :create "junk"; }
addflag "\\Seen";
deleteheader "X-Drop";
vacation :days 1 "away";`)
		res, err := fx.deliver("bob@example.org", "alice@example.com", string(m))
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("deliver: %v", err)
			}
			return
		}
		if len(res.Stored) == 0 {
			t.Fatalf("message lost: %+v", res)
		}
	})
}
