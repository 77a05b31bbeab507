package sieve

import (
	"bufio"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"mailmig/server/sieve/pigeonholetest"
)

// bigBodyHead is the header and first part header of the big-message
// construction.
const bigBodyHead = "From: bob@example.org\nTo: alice@example.com\nSubject: a big message\nMessage-ID: <big@example.org>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BIG-b0undary\"\n\npreamble\n--BIG-b0undary\nContent-Type: text/plain; charset=utf-8\n\n"

// writeBigBody writes the construction with a text part of about
// textSize bytes (filler lines, or a hole of NULs when sparse), the
// needle "needle-one" across the 64 KiB boundary before its end, an HTML
// part, and a base64 part of about b64Size decoded bytes whose last line
// break splits "last-part-keyword". It returns the file's size.
func writeBigBody(t testing.TB, path string, textSize, b64Size int64, sparse bool) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(bigBodyHead)
	start := int64(len(bigBodyHead))
	// The needle's middle sits on a 64 KiB multiple of the part.
	needleAt := (textSize/65536-1)*65536 - 5
	if sparse {
		w.Flush()
		if _, err := f.WriteAt([]byte("\nneedle-one\n"), start+needleAt-1); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(start+textSize, 0); err != nil {
			t.Fatal(err)
		}
		w.Reset(f)
	} else {
		line := "filler text of a long message, line after line, nothing to find here.\n"
		var n int64
		for n < textSize {
			if n <= needleAt && needleAt < n+int64(len(line)) {
				s := line[:needleAt-n] + "needle-one" + line[needleAt-n:]
				w.WriteString(s)
				n += int64(len(s))
				continue
			}
			w.WriteString(line)
			n += int64(len(line))
		}
	}
	w.WriteString("\n--BIG-b0undary\nContent-Type: text/html; charset=us-ascii\n\n<html><body><p>An <b>html</b>\n<i>keyword</i> part</p></body></html>\n--BIG-b0undary\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n")
	// 57 decoded bytes a line: the keyword's 5th byte ends a line.
	filler := strings.Repeat("binary-ish payload 0123456789 ", 1+int(b64Size/30))[:b64Size]
	keyAt := (len(filler)/57)*57 - 4
	plain := filler[:keyAt] + "last-part-keyword" + filler[keyAt:]
	for i := 0; i < len(plain); i += 57 {
		w.WriteString(base64.StdEncoding.EncodeToString([]byte(plain[i:min(i+57, len(plain))])) + "\n")
	}
	w.WriteString("--BIG-b0undary--\nepilogue\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// bigBodyCases are body tests on the construction, with their answer.
var bigBodyCases = []struct {
	test string
	want bool
	big  bool // also run on the 2.5 GB message (each is a pass over it)
}{
	{`body :raw :contains "needle-one"`, true, true},
	{`body :text :contains "NEEDLE-ONE"`, true, true},
	{`body :text :contains "An html"`, true, false},
	{`body :text :contains "keyword"`, true, true},
	{`body :content "application" :contains "last-part-keyword"`, true, true},
	{`body :content "application/octet-stream" :contains :comparator "i;octet" "LAST-PART-KEYWORD"`, false, false},
	{`body :text :contains "last-part-keyword"`, false, false},
	{`body :raw :contains "nothere"`, false, false},
	{`body :content "text/plain" :is "needle-one"`, false, true},
	{`body :content "text" :count "eq" :comparator "i;ascii-numeric" "2"`, true, true},
	{`body :text :matches "*NEEDLE-one*"`, true, true},
	{`body :raw :matches "*needle-one*--BIG-b0undary--*epilogue*"`, true, true},
	{`body :content "text/plain" :matches "*needle-one*nothere*"`, false, false},
	{`header :contains "subject" "big"`, true, true},
	{`size :over 1M`, true, true},
}

// bigBodyCasesSlow need a regexp engine pass (Go's NFA, some MB/s): run
// on the smaller construction only.
var bigBodyCasesSlow = []struct {
	test string
	want bool
}{
	{`body :content "text/plain" :matches "*needle-?ne*"`, true},
	{`body :content "text/plain" :matches "needle*"`, false},
	{`body :raw :regex "needle-o[n]e"`, true},
	{`body :content "application" :regex "last-part-key(word|phrase)"`, true},
	{`body :content "text/html" :matches "*<i>keyword</i>*"`, true},
}

func bigScript(test string) string {
	return `require ["body", "fileinto", "relational", "comparator-i;ascii-numeric", "regex"];` + "\nif " + test + " { fileinto \"yes\"; }\n"
}

// runFile runs script on the message in path through NewMessageReader.
func runFile(t testing.TB, script, path string) bool {
	t.Helper()
	s, err := Compile([]byte(script), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := NewMessageReader(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Execute(context.Background(), &Input{EnvelopeFrom: "bob@example.org", EnvelopeTo: "alice@example.com", Msg: m})
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return len(o.Mailboxes) == 1
}

// TestBigBodyLikePigeonhole: on a 20 MB message (a 20 MB text part with
// its needle across a 64 KiB boundary, an HTML part, a 2 MB base64 part
// whose keyword is split over two lines), each body test answers as
// pigeonhole's sieve-test does on the same file, with mailmig streaming
// the parts (they are beyond bodyThreshold).
func TestBigBodyLikePigeonhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.eml")
	size := writeBigBody(t, path, 20<<20, 2<<20, false)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if size <= bodyThreshold*4 {
		t.Fatalf("the message (%d bytes) must be far beyond bodyThreshold (%d)", size, bodyThreshold)
	}
	type tc struct {
		test string
		want bool
	}
	var cases []tc
	for _, c := range bigBodyCases {
		cases = append(cases, tc{c.test, c.want})
	}
	for _, c := range bigBodyCasesSlow {
		cases = append(cases, tc{c.test, c.want})
	}
	for _, c := range cases {
		script := bigScript(c.test)
		start := time.Now()
		got := runFile(t, script, path)
		took := time.Since(start)
		ref := pigeonholetest.Run(t, script, string(raw))
		pigeon := strings.Join(ref.Folders, ",") == "yes"
		t.Logf("%-90s mailmig %v (%v), pigeonhole %v", c.test, got, took.Round(time.Millisecond), pigeon)
		if got != pigeon {
			t.Errorf("%s: mailmig %v, pigeonhole %v\n%s", c.test, got, pigeon, ref.Output)
		}
		if got != c.want {
			t.Errorf("%s: %v, the construction says %v", c.test, got, c.want)
		}
	}
}

// TestContainsStreamChunks: :contains finds a key that any read
// boundary cuts (one byte at a time, halves, odd sizes).
func TestContainsStreamChunks(t *testing.T) {
	text := strings.Repeat("x", 70000) + "The Needle" + strings.Repeat("y", 3)
	for _, cmp := range []string{"i;octet", "i;ascii-casemap", "i;unicode-casemap"} {
		key := "The Needle"
		if cmp != "i;octet" {
			key = "tHE nEEDLE"
		}
		for name, r := range map[string]func() *strings.Reader{"whole": func() *strings.Reader { return strings.NewReader(text) }} {
			if !containsStream(cmp, iotest.OneByteReader(r()), key) || !containsStream(cmp, iotest.HalfReader(r()), key) || !containsStream(cmp, r(), key) {
				t.Errorf("%s %s: not found", cmp, name)
			}
			if containsStream(cmp, iotest.OneByteReader(r()), key+"!") {
				t.Errorf("%s %s: found what is not there", cmp, name)
			}
		}
	}
}

func rssKB(t testing.TB, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s", field)
	return 0
}

// TestBigBodyMemory: the body, header and size tests on a 2.5 GB message
// (a sparse text part, its needle near the end; an HTML part; a 4 MB
// base64 part) answer right with this process's peak RSS less than
// 64 MB above what it was before (the whole-message path would need the
// message's size, and more).
func TestBigBodyMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.eml")
	size := writeBigBody(t, path, 2500<<20, 4<<20, true)
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
	base := rssKB(t, "VmRSS")
	for _, c := range bigBodyCases {
		if !c.big {
			continue
		}
		start := time.Now()
		got := runFile(t, bigScript(c.test), path)
		peak := rssKB(t, "VmHWM")
		t.Logf("%-90s %v in %v, peak RSS +%d KB", c.test, got, time.Since(start).Round(time.Millisecond), peak-base)
		if got != c.want {
			t.Errorf("%s on a %d-byte message: %v, want %v", c.test, size, got, c.want)
		}
		if peak-base > 64<<10 {
			t.Fatalf("%s on a %d-byte message: peak RSS %d KB above the %d KB before; want < 64 MB", c.test, size, peak-base, base)
		}
	}
}
