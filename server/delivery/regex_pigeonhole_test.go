package delivery

import (
	"slices"
	"strings"
	"testing"

	"mailmig/server/sieve/pigeonholetest"
)

// TestRegexCapturesLikePigeonhole: :regex matches case-insensitively
// under the default comparator and ${n} keeps the case of the text, as
// in pigeonhole (RFC 5229 §3.2, draft-ietf-sieve-regex).
func TestRegexCapturesLikePigeonhole(t *testing.T) {
	const req = `require ["fileinto", "mailbox", "regex", "variables"]; `
	cases := []struct{ name, script, subject string }{
		{"tag keeps case", req + `if header :regex "subject" "^\\[([a-z]+)\\]" { fileinto :create "Tag/${1}"; }`, "[Work] hello"},
		{"upper pattern, lower text", req + `if header :regex "subject" "^RE: (.*)$" { fileinto :create "Re/${1}"; }`, "re: Budget"},
		{"octet comparator is exact", req + `if header :regex :comparator "i;octet" "subject" "^\\[([a-z]+)\\]" { fileinto :create "T/${1}"; }`, "[Work] x"},
		{"explicit ascii-casemap", req + `if header :regex :comparator "i;ascii-casemap" "subject" "(list-[a-z]+)" { fileinto :create "L/${1}"; }`, "Re: [List-Debian] x"},
		{"two groups", req + `if header :regex "subject" "^([A-Z]+)-([0-9]+)" { fileinto :create "${1}/${2}"; }`, "Proj-42 done"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := msg("Subject: " + tc.subject)
			ref := pigeonholetest.Run(t, tc.script, m)
			f := newFixture(t)
			f.rawScript("alice", tc.script)
			f.mustDeliver("bob@example.org", "alice@example.com", m)
			var folders []string
			for _, p := range strings.Fields(f.where("alice")) {
				name, _, _ := strings.Cut(p, ":")
				folders = append(folders, name)
			}
			slices.Sort(folders)
			if !slices.Equal(folders, ref.Folders) {
				t.Errorf("mailmig: %v\npigeonhole: %v\n%s", folders, ref.Folders, ref.Output)
			}
		})
	}
}
