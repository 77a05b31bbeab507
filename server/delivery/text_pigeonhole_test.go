package delivery

import (
	"strings"
	"testing"

	"mailmig/server/sieve/pigeonholetest"
)

// TestMultilineTextLikePigeonhole: "text:" strings are dot-unstuffed on
// every line, the first included (RFC 5228 §2.4.2), judged by the
// vacation text pigeonhole would send.
func TestMultilineTextLikePigeonhole(t *testing.T) {
	for _, body := range []string{
		"...back soon\n..x\nplain\n",
		"first\n..second\n...third\n",
		".hidden first line\n",
		"no dots at all\n",
	} {
		script := "require [\"vacation\"];\nvacation :days 1 text:\n" + body + ".\n;\n"
		ref := pigeonholetest.Run(t, script, msg())
		if len(ref.Vacations) != 1 {
			t.Fatalf("sieve-test sent %d vacation replies:\n%s", len(ref.Vacations), ref.Output)
		}
		f := newFixture(t)
		f.rawScript("alice", script)
		f.mustDeliver("bob@example.org", "alice@example.com", msg())
		sent := f.sender.all()
		if len(sent) != 1 {
			t.Fatalf("%q: mailmig sent %d replies", body, len(sent))
		}
		_, got, _ := strings.Cut(sent[0].Msg, "\r\n\r\n")
		got = strings.ReplaceAll(got, "\r\n", "\n")
		want := strings.TrimSuffix(strings.ReplaceAll(ref.Vacations[0], "\r\n", "\n"), "\r")
		if !strings.HasPrefix(got, want) {
			t.Errorf("%q: mailmig's reply text\n%q\npigeonhole's\n%q", body, got, want)
		}
	}
}
