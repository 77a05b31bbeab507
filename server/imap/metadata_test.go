package imap

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	metadataRE     = regexp.MustCompile(`^(\* METADATA (?:"[^"]*"|\S+) \()(.*)\)$`)
	metadataPairRE = regexp.MustCompile(`\S+ (?:NIL|\{\d+\}"(?:[^"\\]|\\.)*")`)
)

// normMetadata sorts the entry/value pairs of a METADATA response:
// dovecot lists an entry's descendants in its dictionary's order.
func normMetadata(l string) string {
	m := metadataRE.FindStringSubmatch(l)
	if m == nil {
		return l
	}
	pairs := metadataPairRE.FindAllString(m[2], -1)
	slices.Sort(pairs)
	return m[1] + strings.Join(pairs, " ") + ")"
}

func TestNormMetadata(t *testing.T) {
	got := normMetadata(`* METADATA INBOX (/private/b {1}"x" /private/a NIL)`)
	if want := `* METADATA INBOX (/private/a NIL /private/b {1}"x")`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestMetadataFile: entries survive a new session (they are in the
// Maildir's mailmig-metadata file, written through a rename), and the
// file is valid JSON with the entries in lower case.
func TestMetadataFile(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	rc.send("a SETMETADATA INBOX (/private/Comment \"kept\" /shared/x {3}\r\n")
	rc.until("+ ")
	rc.send("abc)\r\n")
	if l := rc.until("a "); !strings.HasPrefix(l[len(l)-1], "a OK") {
		t.Fatalf("SETMETADATA: %q", l)
	}
	rc2 := dialRaw(t, ts.addr)
	rc2.send("l LOGIN alice pw-alice\r\n")
	rc2.until("l ")
	rc2.send("b GETMETADATA INBOX (/private/comment /shared/x)\r\n")
	got := strings.Join(rc2.until("b "), "\n")
	if !strings.Contains(got, "/private/comment {4}\nkept /shared/x {3}\nabc)") {
		t.Errorf("GETMETADATA in a new session: %q", got)
	}
	b, err := os.ReadFile(filepath.Join(ts.dir, "alice", "Maildir", metadataFile))
	if err != nil || !strings.Contains(string(b), `"/private/comment": "kept"`) {
		t.Errorf("%s: %q, %v", metadataFile, b, err)
	}
	matches, _ := filepath.Glob(filepath.Join(ts.dir, "alice", "Maildir", ".mailmig-metadata-*"))
	if len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

// FuzzCheckEntry: entry names accepted are lower case and never hold
// what RFC 5464 forbids.
func FuzzCheckEntry(f *testing.F) {
	for _, s := range []string{"/private/comment", "/shared", "/private//x", "/foo", "/shared/a*", "/private/a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := checkEntry(s)
		if err != nil {
			return
		}
		if l != strings.ToLower(s) || strings.ContainsAny(l, "*%") || strings.Contains(l, "//") || strings.HasSuffix(l, "/") {
			t.Fatalf("accepted %q as %q", s, l)
		}
	})
}
