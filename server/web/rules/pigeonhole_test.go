package rules

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"mailmig/mailstore"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/server/sieve"
	"mailmig/server/sieve/pigeonholetest"
)

type recSender struct {
	mu sync.Mutex
	to []string // "from>to"
}

func (r *recSender) Send(_ context.Context, from string, to []string, msg io.Reader) error {
	io.Copy(io.Discard, msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range to {
		r.to = append(r.to, from+">"+t)
	}
	return nil
}

// TestRuleShapesLikePigeonhole: every rule shape the web form writes
// (header From/To/Subject contains/is/wildcard/regex/negated, size
// over/under, fileinto existing/new folder, redirect, redirect and keep,
// reject with text, discard, vacation, flags, keep a copy marked
// \Deleted, stop or continue) runs through Set.Script, then through
// pigeonhole's sieve-test -e and mailmig's delivery; stored copies with
// their flags, what is sent and the reject text must agree.
func TestRuleShapesLikePigeonhole(t *testing.T) {
	cond := func(field, op, value string, not bool) Condition {
		return Condition{Field: field, Op: op, Value: value, Not: not}
	}
	rule := func(conds []Condition, acts ...Action) Rule {
		return Rule{Name: "r", Conditions: conds, Actions: acts}
	}
	into := Action{Kind: ActFileinto, Arg: "Filed", Create: true}
	const spam = "From: Bob <bob@example.org>\nTo: alice@example.com\nMessage-ID: <w2@example.org>\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nSubject: cheap\nX-Spam-Level: ******\n\nBuy.\n"
	shapes := []struct {
		name string
		set  Set
	}{
		{"site spam rule kept", Set{}},
		{"site spam rule off", Set{NoSpamRule: true}},
		{"site spam rule, then the user's rule", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, into)}}},
		{"from contains", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, into)}}},
		{"from is (address)", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpIs, "bob@example.org", false)}, into)}}},
		{"to wildcard", Set{Rules: []Rule{rule([]Condition{cond(FieldTo, OpMatches, "*@example.com", false)}, into)}}},
		{"to or cc is", Set{Rules: []Rule{rule([]Condition{cond(FieldAnyTo, OpIs, "alice@example.com", false)}, into)}}},
		{"subject regex", Set{Rules: []Rule{rule([]Condition{cond(FieldSubject, OpRegex, "^h.l+o", false)}, into)}}},
		{"subject negated", Set{Rules: []Rule{rule([]Condition{cond(FieldSubject, OpContains, "urgent", true)}, into)}}},
		{"named header", Set{Rules: []Rule{rule([]Condition{cond(FieldHeader+"X-Mailer", OpContains, "mutt", false)}, into)}}},
		{"size over", Set{Rules: []Rule{rule([]Condition{cond(FieldSize, OpOver, "10", false)}, into)}}},
		{"size under", Set{Rules: []Rule{rule([]Condition{cond(FieldSize, OpUnder, "1M", false)}, into)}}},
		{"any of two", Set{Rules: []Rule{{Name: "any", Any: true, Conditions: []Condition{cond(FieldSubject, OpIs, "nope", false), cond(FieldFrom, OpContains, "bob", false)}, Actions: []Action{into}}}}},
		{"fileinto existing folder", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, Action{Kind: ActFileinto, Arg: "junk"})}}},
		{"fileinto missing folder", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, Action{Kind: ActFileinto, Arg: "Missing"})}}},
		{"redirect", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, Action{Kind: ActRedirect, Arg: "carol@example.net"})}}},
		{"redirect and keep", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, Action{Kind: ActRedirectCpy, Arg: "carol@example.net"})}}},
		{"reject with text", Set{Rules: []Rule{rule([]Condition{cond(FieldSubject, OpContains, "hello", false)}, Action{Kind: ActReject, Arg: "Not here."})}}},
		{"discard", Set{Rules: []Rule{rule([]Condition{cond(FieldSubject, OpContains, "hello", false)}, Action{Kind: ActDiscard})}}},
		{"vacation action", Set{Rules: []Rule{rule([]Condition{cond(FieldSubject, OpContains, "hello", false)}, Action{Kind: ActVacation, Arg: "Away.", Days: 3})}}},
		{"flag and seen", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, Action{Kind: ActFlag}, Action{Kind: ActSeen}, into)}}},
		{"keep a copy marked deleted", Set{Rules: []Rule{rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, into, Action{Kind: ActKeepDeleted})}}},
		{"continue to the next rule", Set{Rules: []Rule{
			{Name: "a", Continue: true, Conditions: []Condition{cond(FieldFrom, OpContains, "bob", false)}, Actions: []Action{{Kind: ActFlag}}},
			rule([]Condition{cond(FieldSubject, OpContains, "hello", false)}, into)}}},
		{"stop ends", Set{Rules: []Rule{
			rule([]Condition{cond(FieldFrom, OpContains, "bob", false)}, Action{Kind: ActFileinto, Arg: "First", Create: true}),
			rule([]Condition{cond(FieldSubject, OpContains, "hello", false)}, into)}}},
		{"vacation form", Set{Vacation: &Vacation{Subject: "Away", Days: 2, Text: "I am away."}}},
	}
	const m = "From: Bob <bob@example.org>\nTo: alice@example.com\nMessage-ID: <w1@example.org>\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nSubject: hello\nX-Mailer: mutt 2.2\n\nHello Alice,\nthe body.\n"
	// The cases about the site's spam rule get a message it files.
	spamCase := map[string]bool{"site spam rule kept": true, "site spam rule off": true, "site spam rule, then the user's rule": true}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			m := m
			if spamCase[sh.name] {
				m = spam
			}
			script := string(sh.set.Script())
			if err := sieve.Validate([]byte(script)); err != nil {
				t.Fatalf("the form wrote a script mailmig refuses: %v\n%s", err, script)
			}
			ref := pigeonholetest.ExecCase(t, pigeonholetest.Setup{Script: script, From: "bob@example.org", To: "alice@example.com", Msg: m})
			if ref.CompileError != "" {
				t.Fatalf("pigeonhole refuses the form's script:\n%s\n%s", ref.CompileError, script)
			}
			refStored := pigeonholetest.StoredCopies(t, ref.Maildir, nil)
			var refSent []string
			refReject := ""
			for _, s := range ref.Sent {
				if strings.Contains(s.Msg, "Subject: Automatically rejected mail") {
					_, reason, _ := strings.Cut(s.Msg, "was automatically rejected:\n")
					reason, _, _ = strings.Cut(reason, "\n--")
					refReject = strings.TrimSpace(reason)
					continue
				}
				refSent = append(refSent, s.From+">"+s.To)
			}
			slices.Sort(refSent)

			root := t.TempDir()
			snd := &recSender{}
			d := &delivery.Deliverer{
				MaildirFor: func(user string) (string, error) { return filepath.Join(root, user, "Maildir"), nil },
				ScriptsFor: func(user string) (*sieve.Storage, error) {
					return &sieve.Storage{Dir: filepath.Join(root, user, "sieve"), ActiveLink: filepath.Join(root, user, ".dovecot.sieve")}, nil
				},
				Sender:   snd,
				Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
				Hostname: "mx.example.com",
				NoFsync:  true,
			}
			st, _ := d.ScriptsFor("alice")
			if err := st.Put("rules", []byte(script)); err != nil {
				t.Fatal(err)
			}
			if err := st.SetActive("rules"); err != nil {
				t.Fatal(err)
			}
			// The site's spam folder exists on both sides.
			ms, err := mailstore.Open(filepath.Join(root, "alice", "Maildir"), mailstore.Options{NoFsync: true, CreateRoot: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := ms.CreateFolder("junk"); err != nil {
				t.Fatal(err)
			}
			_, err = d.Deliver(context.Background(), delivery.Envelope{From: "bob@example.org", To: "alice@example.com", User: "alice"}, msgspool.Bytes([]byte(strings.ReplaceAll(m, "\n", "\r\n"))))
			gotReject := ""
			var re *delivery.RejectError
			if errors.As(err, &re) {
				gotReject = re.Reason
			} else if err != nil {
				t.Fatal(err)
			}
			gotStored := pigeonholetest.StoredCopies(t, filepath.Join(root, "alice", "Maildir"), nil)
			got := slices.Clone(snd.to)
			slices.Sort(got)
			if !slices.Equal(gotStored, refStored) || !slices.Equal(got, refSent) || gotReject != refReject {
				t.Errorf("script:\n%s\nmailmig: stored %v sent %v reject %q\npigeonhole: stored %v sent %v reject %q\n%s",
					script, gotStored, got, gotReject, refStored, refSent, refReject, ref.Output)
			}
			inJunk := slices.ContainsFunc(gotStored, func(x string) bool { return strings.HasPrefix(x, "junk ") })
			if spamCase[sh.name] && inJunk == sh.set.NoSpamRule {
				t.Errorf("spam stored %v with NoSpamRule=%v", gotStored, sh.set.NoSpamRule)
			}
			_ = os.Remove
		})
	}
}
