package delivery

import (
	"slices"
	"strings"
	"testing"

	"mailmig/server/sieve/pigeonholetest"
)

// TestFlagsPerActionLikePigeonhole: ":flags" sets the flags of its one
// copy (RFC 5232 §5), judged against sieve-test: "fileinto X; keep
// :flags \Deleted" must not mark the filed copy \Deleted (it would be
// lost at the next expunge).
func TestFlagsPerActionLikePigeonhole(t *testing.T) {
	const req = `require ["imap4flags", "fileinto", "mailbox", "copy", "variables"]; `
	cases := []struct{ name, script string }{
		{"filed copy and a deleted INBOX copy", req + `fileinto :create "Existing"; keep :flags "\\Deleted";`},
		{"web form: keep a copy marked deleted", req + `if true { fileinto :create "Bills"; keep :flags "\\Deleted"; stop; }`},
		{"copy with its own flags", req + `fileinto :copy :create :flags "\\Seen" "X";`},
		{"flag variable for plain actions", req + `addflag "\\Flagged"; fileinto :create "A";`},
		{"implicit keep gets the variable", req + `addflag "\\Seen";`},
		{"two flags in one string", req + `fileinto :create :flags "\\Seen \\Answered" "B"; keep;`},
		{"flags from a variable", req + `set "f" "\\Flagged"; fileinto :create :flags "${f}" "C";`},
		{"empty flag list", req + `addflag "\\Seen"; fileinto :create :flags "" "D";`},
		{"keep flags and the variable", req + `addflag "\\Answered"; fileinto :create "E"; keep :flags ["\\Seen", "\\Flagged"];`},
	}
	msgText := msg()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := pigeonholetest.Run(t, tc.script, msgText)
			f := newFixture(t)
			f.rawScript("alice", tc.script)
			f.mustDeliver("bob@example.org", "alice@example.com", msgText)
			var folders []string
			got := map[string][]string{}
			for _, p := range strings.Fields(f.where("alice")) {
				name, _, _ := strings.Cut(p, ":")
				folders = append(folders, name)
				for _, m := range f.folder("alice", name) {
					var fl []string
					for _, x := range m.Flags {
						if x != "\\Recent" {
							fl = append(fl, strings.ToLower(x))
						}
					}
					slices.Sort(fl)
					if len(fl) > 0 {
						got[name] = fl
					}
				}
			}
			slices.Sort(folders)
			same := slices.Equal(folders, ref.Folders) && len(got) == len(ref.Flags)
			for k, v := range ref.Flags {
				same = same && slices.Equal(got[k], v)
			}
			if !same {
				t.Errorf("mailmig: folders %v flags %v\npigeonhole: folders %v flags %v\n%s", folders, got, ref.Folders, ref.Flags, ref.Output)
			}
		})
	}
}
