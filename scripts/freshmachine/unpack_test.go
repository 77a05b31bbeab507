package freshmachine

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSetupUnpackLine: a "PACKAGE:unpack PATH" line of the package list
// (a package that conflicts with an installed one, unpacked rather than
// installed: cyrus-imapd) passes when PATH is there, and otherwise makes
// test-setup --check fail with the commands that unpack it.
func TestSetupUnpackLine(t *testing.T) {
	root := repoRoot(t)
	path := minimalPath(t, append([]string{"bash", "sed", "grep", "dpkg-query", "id"}, coreutils(t)...)...)
	for _, tc := range []struct {
		name  string
		lines []string
		want  string // "" = must pass
	}{
		{"unpacked", []string{"bash bash", "mailmig-conflicting:unpack /bin/ls"}, ""},
		{"not unpacked", []string{"bash bash", "mailmig-conflicting:unpack /var/lib/mailmig-absent/imapd"},
			"apt-get download mailmig-conflicting && dpkg-deb -x mailmig-conflicting_*.deb /var/lib/mailmig-test/mailmig-conflicting\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := envWith(path, "MAILMIG_TEST_PACKAGES="+writeList(t, tc.lines...))
			out, err := run(t, time.Minute, root, env, filepath.Join(path, "bash"), "scripts/test-setup", "--check")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("test-setup --check: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(out, tc.want) || strings.Contains(out, "apt-get install") {
				t.Fatalf("test-setup --check: %v, want the unpack line %q and no apt-get install:\n%s", err, tc.want, out)
			}
		})
	}
}
