package imap

import (
	"encoding/json"
	"fmt"
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

// TestMetadataCapability: mailmig announces the METADATA capabilities
// dovecot announces with imap_metadata=yes: METADATA, which takes in
// METADATA-SERVER (RFC 5464 §1), and not METADATA-SERVER alone.
func TestMetadataCapability(t *testing.T) {
	cmds := []string{"CAPABILITY"}
	pick := func(resp [][]string) []string {
		var out []string
		for _, l := range resp[0] {
			for _, c := range strings.Fields(strings.TrimPrefix(l, "* CAPABILITY ")) {
				if strings.HasPrefix(c, "METADATA") {
					out = append(out, c)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	theirs, ours := pick(dovecotSession(t, cmds, "")), pick(mailmigSession(t, cmds, ""))
	if !slices.Equal(ours, theirs) || !slices.Contains(ours, "METADATA") {
		t.Errorf("METADATA capabilities: mailmig %q, dovecot %q", ours, theirs)
	}
}

// TestMetadataLimits follows RFC 5464 §4.3 on a raw session: a value
// longer than metadataMaxValue is NO [METADATA MAXSIZE n], an entry past
// metadataMaxEntries NO [METADATA TOOMANY], and neither changes anything.
// dovecot 2.3.19 has no such limits (no reference to compare with): the
// test checks that it takes the same over-long value, so the difference
// stays a known one.
func TestMetadataLimits(t *testing.T) {
	big := strings.Repeat("v", metadataMaxValue+1)
	theirs := dovecotSession(t, []string{"SETMETADATA INBOX (/private/big " + literals("<<"+big+">>") + ")"}, "")
	if got := theirs[0][len(theirs[0])-1]; got != "OK" {
		t.Errorf("dovecot refused a %d-byte value: %q (the limit is then its, not only mailmig's)", len(big), got)
	}

	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	tagged := func(tag, cmd string) string {
		t.Helper()
		rc.send(tag + " " + cmd + "\r\n")
		l := rc.until(tag + " ")
		return l[len(l)-1]
	}
	expect := func(tag, cmd, want string) {
		t.Helper()
		if got := tagged(tag, cmd); !strings.HasPrefix(got, tag+" "+want) {
			t.Errorf("%s: got %q, want %q", cmd[:min(len(cmd), 60)], got, want)
		}
	}
	expect("a1", "SETMETADATA INBOX (/private/max "+literals("<<"+big[1:]+">>")+")", "OK")
	expect("a2", "SETMETADATA INBOX (/private/big "+literals("<<"+big+">>")+" /private/small \"s\")", "NO [METADATA MAXSIZE 65536]")
	expect("a3", "SETMETADATA \"\" (/private/big "+literals("<<"+big+">>")+")", "NO [METADATA MAXSIZE 65536]")
	rc.send("a4 GETMETADATA INBOX (/private/big /private/small)\r\n")
	if got := strings.Join(rc.until("a4 "), "\n"); !strings.Contains(got, "(/private/big NIL /private/small NIL)") {
		t.Errorf("a refused SETMETADATA stored something: %q", got)
	}

	// Fill the file: /private/max and metadataMaxEntries-1 more.
	var b strings.Builder
	for i := 1; i < metadataMaxEntries; i++ {
		fmt.Fprintf(&b, " /private/n%d \"%d\"", i, i)
	}
	expect("b1", "SETMETADATA INBOX ("+b.String()[1:]+")", "OK")
	expect("b2", `SETMETADATA INBOX (/private/one-more "x")`, "NO [METADATA TOOMANY]")
	expect("b3", `SETMETADATA "" (/shared/one-more "x")`, "NO [METADATA TOOMANY]")
	expect("b4", `SETMETADATA INBOX (/private/n1 "changed")`, "OK")
	expect("b5", `SETMETADATA INBOX (/private/n1 NIL /private/one-more "x")`, "OK")
	rc.send("b6 GETMETADATA INBOX (/private/n1 /private/one-more)\r\n")
	if got := strings.Join(rc.until("b6 "), "\n"); !strings.Contains(got, "(/private/n1 NIL /private/one-more {1}\nx)") {
		t.Errorf("after freeing an entry: %q", got)
	}
}

// FuzzMetadataValue: any value, UTF-8 or not, comes back from the file
// byte for byte, and reading any bytes as the file never panics.
func FuzzMetadataValue(f *testing.F) {
	for _, s := range []string{"", "plain", "k\xe4se", "a\x00b", `{"base64":"AA=="}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		b, err := json.Marshal(metadataStore{"INBOX": {"/private/x": v}})
		if err != nil {
			t.Fatal(err)
		}
		var md metadataStore
		if err := json.Unmarshal(b, &md); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got := md["INBOX"]["/private/x"]; got != v {
			t.Fatalf("got %q, want %q (file %s)", got, v, b)
		}
		json.Unmarshal([]byte(v), &md)
	})
}
