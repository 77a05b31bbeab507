package imap

import (
	"slices"
	"strings"
	"testing"
)

// dovecotOnlyCapabilities are what Debian's dovecot 2.3.19 (as the
// differential harness configures it) announces after login and mailmig
// does not, each with the reason. Anything else dovecot announces,
// mailmig must announce too.
var dovecotOnlyCapabilities = map[string]string{
	// RFC 2221: mailmig never refers a client to another server.
	"LOGIN-REFERRALS": "no referrals",
}

// TestDovecotCapabilities compares the capabilities announced after
// login with dovecot's: mailmig announces everything dovecot does but
// dovecotOnlyCapabilities.
func TestDovecotCapabilities(t *testing.T) {
	caps := func(resp [][]string) []string {
		for _, l := range resp[0] {
			if c, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
				return strings.Fields(c)
			}
		}
		t.Fatalf("no CAPABILITY in %q", resp)
		return nil
	}
	theirs := caps(dovecotSession(t, []string{"CAPABILITY"}, ""))
	ours := caps(mailmigSession(t, []string{"CAPABILITY"}, ""))
	var missing, extra []string
	for _, c := range theirs {
		if !slices.Contains(ours, c) {
			if _, ok := dovecotOnlyCapabilities[c]; !ok {
				t.Errorf("dovecot announces %s, mailmig does not", c)
			}
			missing = append(missing, c)
		}
	}
	for c := range dovecotOnlyCapabilities {
		if slices.Contains(ours, c) {
			t.Errorf("mailmig announces %s now: take it out of dovecotOnlyCapabilities", c)
		}
	}
	for _, c := range ours {
		if !slices.Contains(theirs, c) {
			extra = append(extra, c)
		}
	}
	t.Logf("dovecot only: %v; mailmig only: %v", missing, extra)
}
