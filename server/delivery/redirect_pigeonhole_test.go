package delivery

import (
	"slices"
	"strings"
	"testing"

	"mailmig/server/sieve/pigeonholetest"
)

// TestRedirectLikePigeonhole: redirect addresses built at run time are
// checked as pigeonhole checks them; an invalid one is a run-time error
// after which only the implicit keep happens (RFC 5228 §2.10.6), never a
// lost message or a RCPT TO with injected parameters.
func TestRedirectLikePigeonhole(t *testing.T) {
	cases := []struct {
		name, script, msg string
	}{
		{"variable not an address", `require ["variables", "fileinto"]; set "a" "not an address"; fileinto "X"; redirect "${a}";`, msg()},
		{"injection from a header", `require ["variables"]; if header :matches "X-Fwd" "*" { redirect "${1}"; }`,
			msg("X-Fwd: bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@example.net")},
		{"space in address", `require ["variables"]; if header :matches "X-Fwd" "*" { redirect "${1}"; }`, msg("X-Fwd: bob @example.net")},
		{"display name", `require ["variables"]; if header :matches "X-Fwd" "*" { redirect "${1}"; }`, msg("X-Fwd: Bob <bob@example.net>")},
		{"valid from a header", `require ["variables"]; if header :matches "X-Fwd" "*" { redirect "${1}"; }`, msg("X-Fwd: bob@example.net")},
		{"quoted local part", `redirect "\"b o b\"@example.net";`, msg()},
		{"the same twice", `redirect "carol@example.net"; redirect "carol@example.net"; keep;`, msg()},
		{"domain case", `redirect "carol@Example.NET"; redirect "carol@example.net";`, msg()},
		{"local part case", `redirect "Carol@example.net"; redirect "carol@example.net";`, msg()},
		// fileinto :create: sieve-test does not look whether a folder exists;
		// a delivery into a missing one without :create keeps into INBOX,
		// as dovecot-lda does with lda_mailbox_autocreate = no.
		{"copy and fileinto", `require ["copy", "fileinto", "mailbox"]; redirect :copy "dave@example.net"; fileinto :create "Y";`, msg()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := pigeonholetest.Run(t, tc.script, tc.msg)
			f := newFixture(t)
			f.rawScript("alice", tc.script)
			res := f.mustDeliver("bob@example.org", "alice@example.com", tc.msg)
			var folders []string
			for _, p := range strings.Fields(f.where("alice")) {
				name, _, _ := strings.Cut(p, ":")
				folders = append(folders, name)
			}
			slices.Sort(folders)
			var sentTo []string
			for _, s := range f.sender.all() {
				sentTo = append(sentTo, s.To...)
			}
			if !slices.Equal(folders, ref.Folders) || !slices.Equal(sentTo, ref.Redirects) || (res.ScriptErr != nil) != ref.Failed {
				t.Errorf("mailmig: folders %v, redirected to %v, run-time error %v\npigeonhole: folders %v, redirected to %v, failed %v\n%s",
					folders, sentTo, res.ScriptErr, ref.Folders, ref.Redirects, ref.Failed, ref.Output)
			}
		})
	}
}
