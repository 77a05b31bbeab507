package imap

import (
	"bufio"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// FuzzParseNotify: any NOTIFY argument line parses or fails cleanly.
func FuzzParseNotify(f *testing.F) {
	for _, s := range []string{
		" NONE",
		" SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))",
		" SET STATUS (personal (MessageNew MessageExpunge)) (subtree (a b) (MessageNew MessageExpunge))",
		" SET (mailboxes \"x y\" (MessageNew MessageExpunge)) (inboxes NONE)",
		" SET (selected (MessageNew",
		" SET (selected (AnnotationChange MessageNew MessageExpunge))",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p := &parser{r: bufio.NewReader(strings.NewReader("")), line: []byte(line)}
		req, err := parseNotify(p)
		if err == nil && !req.none && len(req.groups) == 0 {
			t.Fatalf("%q: SET without event groups accepted", line)
		}
	})
}

// TestParseNotifyBadEvent: events RFC 5465/5464 define but this server
// does not send are NO [BADEVENT (supported)] (RFC 5465 §5.9), not BAD.
// dovecot answers them "NO [BADEVENT AnnotationChange]", naming the
// refused events and not the supported ones the RFC asks for, so this is
// not a case for TestNotifyDovecot.
func TestParseNotifyBadEvent(t *testing.T) {
	const bad = "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
	for _, tc := range []struct{ line, want string }{
		{" SET (personal (MailboxName))", ""},
		{" SET (selected (MessageNew MessageExpunge AnnotationChange))", bad},
		{" SET (personal (SubscriptionChange))", ""},
		{" SET (personal (MailboxMetadataChange))", bad},
		{" SET (selected (MessageNew MessageExpunge FlagChange))", ""},
		{" SET (selected (Bogus))", "BAD"},
	} {
		p := &parser{r: bufio.NewReader(strings.NewReader("")), line: []byte(tc.line)}
		_, err := parseNotify(p)
		got := ""
		if err != nil {
			got = "BAD"
			if se, ok := err.(*respErr); ok && se.typ == imap.StatusResponseTypeNo {
				got = "NO [" + string(se.code) + "]"
			}
		}
		if got != tc.want {
			t.Errorf("%q: got %q (%v), want %q", tc.line, got, err, tc.want)
		}
	}
}
