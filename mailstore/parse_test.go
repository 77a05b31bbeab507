package mailstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFolderNames(t *testing.T) {
	tests := []struct {
		name, dir string
	}{
		{"INBOX", ""},
		{"inbox", ""},
		{"a", ".a"},
		{"a/b", ".a.b"},
		{"Grüße", ".Gr&APwA3w-e"},
		{"Tom & Jerry", ".Tom &- Jerry"},
		{"日本語", ".&ZeVnLIqe-"},
		{"INBOX/sub", ".INBOX.sub"},
		{"😀", ".&2D3eAA-"},
		{"a b/c~d", ".a b.c~d"},
	}
	for _, tc := range tests {
		dir, err := EncodeFolderName(tc.name)
		if err != nil || dir != tc.dir {
			t.Errorf("Encode(%q) = %q, %v; want %q", tc.name, dir, err, tc.dir)
			continue
		}
		back, err := DecodeFolderName(dir)
		want := tc.name
		if strings.EqualFold(want, "INBOX") {
			want = "INBOX"
		}
		if err != nil || back != want {
			t.Errorf("Decode(%q) = %q, %v; want %q", dir, back, err, want)
		}
	}
	for _, bad := range []string{"", "a.b", "a//b", "/a", "a/", "~x", "a\tb", "a\nb", "\xff"} {
		if _, err := EncodeFolderName(bad); !errors.Is(err, ErrInvalidFolderName) {
			t.Errorf("Encode(%q): %v, want ErrInvalidFolderName", bad, err)
		}
	}
	for _, bad := range []string{"..", ".a..b", ".&AGE-", ".&APw", ".&APwA-", "x", ".INBOX", ".a&Zm9v-", ".\xc3\xbc"} {
		if n, err := DecodeFolderName(bad); !errors.Is(err, ErrInvalidFolderName) {
			t.Errorf("Decode(%q) = %q, %v; want ErrInvalidFolderName", bad, n, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	kw := []string{"$Label1", "", "foo"}
	tests := []struct {
		name string
		want []string
	}{
		{"1.M1.h,S=1:2,", nil},
		{"1.M1.h,S=1", nil},
		{"1.M1.h:2,S", []string{`\Seen`}},
		{"1.M1.h:2,DFPRST", []string{`\Answered`, `\Deleted`, `\Draft`, `\Flagged`, `\Seen`}},
		{"1.M1.h:2,Sacz", []string{`\Seen`, "$Label1", "foo"}},
		{"1.M1.h:2,bSS", []string{`\Seen`}},
		{"2,FR", []string{`\Answered`, `\Flagged`}},
	}
	for _, tc := range tests {
		if got := ParseFlags(tc.name, kw); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseFlags(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	idx := keywordIndex(kw)
	if got := formatInfo([]string{`\Seen`, "foo", `\Draft`, "$Label1", "unknown", `\Recent`}, idx, "P"); got != "DPSac" {
		t.Errorf("formatInfo = %q, want DPSac", got)
	}
	if got := uninterpretedLetters("DFPSab"); got != "P" {
		t.Errorf("uninterpretedLetters = %q", got)
	}
}

func TestSizesFromKey(t *testing.T) {
	tests := []struct {
		key         string
		size, vsize int64
		uid         uint32
	}{
		{"1.M1P2.host,S=28,W=32", 28, 32, 0},
		{"1.M1P2.host,U=7,S=16,W=19", 16, 19, 7},
		{"1.M1P2.host", -1, -1, 0},
		{"1.M1P2.host,S=x,W=-1,U=0", -1, -1, 0},
	}
	for _, tc := range tests {
		s, v, u := sizesFromKey(tc.key)
		if s != tc.size || v != tc.vsize || u != tc.uid {
			t.Errorf("sizesFromKey(%q) = %d %d %d", tc.key, s, v, u)
		}
	}
}

func TestSizeCounter(t *testing.T) {
	for _, tc := range []struct {
		chunks []string
		vsize  int64
	}{
		{[]string{"a\nb\n"}, 6},
		{[]string{"a\r\nb\r\n"}, 6},
		{[]string{"a\r", "\nb\n"}, 6},
		{[]string{"\n", "\n"}, 4},
		{[]string{"", "x"}, 1},
		{[]string{"\r", "", "\n"}, 2},
		{[]string{"\r\r\n\n\r"}, 6},
		{[]string{"x\r", "\r", "\n\n"}, 6},
		{[]string{"\n\r\n"}, 4},
	} {
		var c sizeCounter
		for _, ch := range tc.chunks {
			c.Write([]byte(ch))
		}
		if c.vsize != tc.vsize {
			t.Errorf("%q: vsize %d, want %d", tc.chunks, c.vsize, tc.vsize)
		}
	}
}

// TestSizeCounterChunks compares the counter with a byte-by-byte count
// of the whole input, for random inputs cut at random places.
func TestSizeCounterChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("a\r\n")
	for i := 0; i < 2000; i++ {
		data := make([]byte, rng.IntN(64))
		for j := range data {
			data[j] = alphabet[rng.IntN(len(alphabet))]
		}
		want := int64(len(data))
		for j, b := range data {
			if b == '\n' && (j == 0 || data[j-1] != '\r') {
				want++
			}
		}
		var c sizeCounter
		for rest := data; len(rest) > 0; {
			n := rng.IntN(len(rest) + 1)
			c.Write(rest[:n])
			rest = rest[n:]
		}
		if c.size != int64(len(data)) || c.vsize != want {
			t.Fatalf("%q: size %d vsize %d, want %d %d", data, c.size, c.vsize, len(data), want)
		}
	}
}

func TestParseUIDList(t *testing.T) {
	tests := []struct {
		name, data string
		ok         bool
		validity   uint32
		next       uint32
		keys       map[string]uint32
	}{
		{"empty", "", true, 0, 1, map[string]uint32{}},
		{"dovecot", "3 V1795464133 N3 G1a021f35c59b046bb72e000083ecc375\n1 :1795464133.M890957P11959.vm,S=28,W=32\n2 :1795464133.M985422P11964.vm,S=28,W=32\n",
			true, 1795464133, 3, map[string]uint32{"1795464133.M890957P11959.vm,S=28,W=32": 1, "1795464133.M985422P11964.vm,S=28,W=32": 2}},
		{"appended past N", "3 V5 N1 Gx\n1 :a\n7 W30 G123 :b\n", true, 5, 8, map[string]uint32{"a": 1, "b": 7}},
		{"partial line", "3 V5 N2\n1 :a\n2 :b", true, 5, 2, map[string]uint32{"a": 1}},
		{"version 1", "1 99 5\n3 x\n", true, 99, 5, map[string]uint32{"x": 3}},
		{"key with flags", "3 V5 N9\n4 :a:2,S\n", true, 5, 9, map[string]uint32{"a": 4}},
		{"no validity", "3 N5\n", false, 0, 0, nil},
		{"bad version", "2 V1\n", false, 0, 0, nil},
		{"decreasing", "3 V1 N1\n5 :a\n4 :b\n", false, 0, 0, nil},
		{"duplicate", "3 V1 N1\n4 :a\n5 :a\n", false, 0, 0, nil},
		{"uid 0", "3 V1 N1\n0 :a\n", false, 0, 0, nil},
		{"no colon", "3 V1 N1\n4 a\n", false, 0, 0, nil},
		{"no newline", "3 V1 N1", false, 0, 0, nil},
		{"empty lines", "3 V1 N1\n\n2 :a\n\n", true, 1, 3, map[string]uint32{"a": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ul, err := parseUIDList([]byte(tc.data))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if ul.UIDValidity != tc.validity || ul.NextUID != tc.next || !reflect.DeepEqual(ul.Keys, tc.keys) {
				t.Fatalf("got V%d N%d %v", ul.UIDValidity, ul.NextUID, ul.Keys)
			}
		})
	}
	var b bytes.Buffer
	if err := formatUIDList(&b, 42, 10, "0123", []uidEntry{{3, "b"}, {1, "a"}}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "3 V42 N10 G0123\n1 :a\n3 :b\n" {
		t.Fatalf("formatted %q", b.String())
	}
}

func TestParseKeywords(t *testing.T) {
	kw, err := parseKeywords([]byte("0 $Label1\n2 foo\n30 ignored\n"))
	if err != nil || !reflect.DeepEqual(kw, []string{"$Label1", "", "foo"}) {
		t.Fatalf("%q, %v", kw, err)
	}
	if got := string(formatKeywords(kw)); got != "0 $Label1\n2 foo\n" {
		t.Fatalf("format %q", got)
	}
	for _, bad := range []string{"x foo\n", "0\n", "-1 a\n", "0 a b\n"} {
		if _, err := parseKeywords([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseMaildirsize(t *testing.T) {
	def, b, c, err := parseMaildirsize([]byte("1000S,10C\n500 5\n-100 -1\n12 1\npartial"))
	if err != nil || def != "1000S,10C" || b != 412 || c != 5 {
		t.Fatalf("%q %d %d %v", def, b, c, err)
	}
	for _, bad := range []string{"", "1S", "1S\nx y\n", "1S\n1\n"} {
		if _, _, _, err := parseMaildirsize([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSubscriptionsFormat(t *testing.T) {
	data := formatSubscriptions([]string{"INBOX", "a/b", "Grüße", "a/b"})
	if string(data) != "V\t2\n\nINBOX\na\tb\nGr&APwA3w-e\n" {
		t.Fatalf("%q", data)
	}
	if got := parseSubscriptions(data); !reflect.DeepEqual(got, []string{"INBOX", "a/b", "Grüße"}) {
		t.Fatalf("%q", got)
	}
	// UTF-8 as the converter found dovecot accepting it, and v1 files.
	if got := parseSubscriptions([]byte("V\t2\n\nGrün\tx\n")); !reflect.DeepEqual(got, []string{"Grün/x"}) {
		t.Fatalf("%q", got)
	}
	if got := parseSubscriptions([]byte("Sent\ninbox\n")); !reflect.DeepEqual(got, []string{"Sent", "INBOX"}) {
		t.Fatalf("%q", got)
	}
}

func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"INBOX", "a/b", "Grüße", "Tom & Jerry", "&", "😀/x", "a.b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		dir, err := EncodeFolderName(name)
		if err != nil {
			return
		}
		if strings.ContainsAny(dir, "/") || (dir != "" && !strings.HasPrefix(dir, ".")) {
			t.Fatalf("Encode(%q) = %q", name, dir)
		}
		for i := 0; i < len(dir); i++ {
			if dir[i] < 0x20 || dir[i] > 0x7e {
				t.Fatalf("Encode(%q) = %q: not ASCII", name, dir)
			}
		}
		back, err := DecodeFolderName(dir)
		if err != nil {
			if strings.EqualFold(name, "INBOX") || strings.EqualFold(strings.SplitN(name, "/", 2)[0], "INBOX") && dir == ".INBOX" {
				return
			}
			t.Fatalf("Decode(Encode(%q) = %q): %v", name, dir, err)
		}
		parts, _ := splitName(name)
		if want := strings.Join(parts, "/"); back != want && !(dir == "" && back == "INBOX") {
			t.Fatalf("round trip %q → %q → %q", name, dir, back)
		}
	})
}

func FuzzDecodeFolderName(f *testing.F) {
	for _, s := range []string{".a.b", ".Gr&APwA3w-e", ".&-", ".&2D3eAA-", "..x", ".&Jjo-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dir string) {
		name, err := DecodeFolderName(dir)
		if err != nil {
			return
		}
		if !utf8.ValidString(name) {
			t.Fatalf("Decode(%q) = %q: invalid UTF-8", dir, name)
		}
		if name == "INBOX" {
			return
		}
		again, err := EncodeFolderName(name)
		if err != nil || again != dir {
			t.Fatalf("Decode(%q) = %q, Encode = %q, %v", dir, name, again, err)
		}
	})
}

func FuzzUIDList(f *testing.F) {
	f.Add([]byte("3 V1795464133 N3 G1a021f35c59b046bb72e000083ecc375\n1 :a,S=28,W=32\n2 :b\n"))
	f.Add([]byte("1 99 5\n3 x\n"))
	f.Add([]byte("3 V5 N1\n1 :a\n7 W30 G123 :b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ul, err := parseUIDList(data)
		if err != nil {
			return
		}
		if len(data) > 0 && ul.UIDValidity == 0 {
			t.Fatal("accepted UIDVALIDITY 0")
		}
		for _, e := range ul.Order {
			if e.UID >= ul.NextUID || ul.Keys[e.Key] != e.UID {
				t.Fatalf("entry %v vs next %d", e, ul.NextUID)
			}
		}
		if ul.UIDValidity == 0 {
			return
		}
		var b bytes.Buffer
		if err := formatUIDList(&b, ul.UIDValidity, ul.NextUID, "g", append([]uidEntry(nil), ul.Order...)); err != nil {
			t.Fatal(err)
		}
		again, err := parseUIDList(b.Bytes())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if !reflect.DeepEqual(again.Keys, ul.Keys) || again.NextUID != ul.NextUID || again.UIDValidity != ul.UIDValidity {
			t.Fatalf("round trip changed %v → %v", ul.Keys, again.Keys)
		}
	})
}

func FuzzKeywords(f *testing.F) {
	f.Add([]byte("0 $Label1\n1 foo\n"))
	f.Add([]byte("25 z\n3 d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kw, err := parseKeywords(data)
		if err != nil {
			return
		}
		if len(kw) > 26 {
			t.Fatalf("%d keywords", len(kw))
		}
		again, err := parseKeywords(formatKeywords(kw))
		if err != nil {
			t.Fatal(err)
		}
		for len(again) < len(kw) {
			again = append(again, "")
		}
		if !reflect.DeepEqual(again, kw) {
			t.Fatalf("round trip %q → %q", kw, again)
		}
	})
}

func FuzzMaildirsize(f *testing.F) {
	f.Add([]byte("1000S,10C\n500 5\n-100 -1\n"))
	f.Add([]byte("0S\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		def, _, _, err := parseMaildirsize(data)
		if err == nil && strings.Contains(def, "\n") {
			t.Fatalf("definition %q", def)
		}
	})
}

func FuzzFileName(f *testing.F) {
	f.Add("1795464133.M890957P11959.vm,S=28,W=32:2,Sab", "$Label1", "foo")
	f.Add("1.M1P1.h,U=7,S=16,W=19:2,FS", "", "x")
	f.Fuzz(func(t *testing.T, name, k0, k1 string) {
		kw := []string{k0, k1}
		flags := ParseFlags(name, kw)
		for _, fl := range flags {
			if c, ok := canonicalFlag(fl); !ok && fl != k0 && fl != k1 || ok && c != fl {
				t.Fatalf("ParseFlags(%q) gave %q", name, fl)
			}
		}
		key := keyOf(name)
		if strings.Contains(key, ":") {
			t.Fatalf("key %q", key)
		}
		sizesFromKey(key)
		// Formatting the parsed flags and parsing again is stable.
		valid := true
		for _, k := range kw {
			if _, ok := canonicalFlag(k); !ok || strings.HasPrefix(k, `\`) {
				valid = false
			}
		}
		if !valid || k0 == k1 {
			return
		}
		info := formatInfo(flags, keywordIndex(kw), "")
		if again := ParseFlags("x:2,"+info, kw); !reflect.DeepEqual(again, flags) {
			t.Fatalf("%q: %v → %q → %v", name, flags, info, again)
		}
	})
}

func FuzzSubscriptions(f *testing.F) {
	f.Add([]byte("V\t2\n\nINBOX\na\tb\nGr&APwA3w-e\n"))
	f.Add([]byte("Sent\nGone.Away\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		names := parseSubscriptions(data)
		var valid []string
		for _, n := range names {
			if _, err := splitName(n); err == nil {
				valid = append(valid, n)
			}
		}
		again := parseSubscriptions(formatSubscriptions(valid))
		if len(again) != len(valid) {
			t.Fatalf("round trip %q → %q", valid, again)
		}
		for i := range valid {
			if again[i] != valid[i] {
				t.Fatalf("round trip %q → %q", valid, again)
			}
		}
	})
}

// FuzzUIDListTail: parsing a uidlist in two steps (what was there, then
// what was appended) gives what one parse of the whole gives.
func FuzzUIDListTail(f *testing.F) {
	f.Add([]byte("3 V5 N2 Gx\n1 :a\n2 :b\n"), []byte("3 :c\n7 W1 :d\n"))
	f.Add([]byte("3 V5 N2\n1 :a\n2 :b"), []byte("x\n3 :c\n"))
	f.Fuzz(func(t *testing.T, head, tail []byte) {
		whole, errWhole := parseUIDList(append(append([]byte(nil), head...), tail...))
		ul, err := parseUIDList(head)
		if err != nil || ul.UIDValidity == 0 {
			return
		}
		rest := append(append([]byte(nil), head...), tail...)[ul.Complete:]
		errTail := ul.parseMore(rest)
		if (errWhole == nil) != (errTail == nil) {
			t.Fatalf("whole: %v, in two steps: %v", errWhole, errTail)
		}
		if errWhole != nil {
			return
		}
		if !reflect.DeepEqual(whole.Keys, ul.Keys) || whole.NextUID != ul.NextUID || whole.Complete != ul.Complete {
			t.Fatalf("whole %v N%d C%d, two steps %v N%d C%d", whole.Keys, whole.NextUID, whole.Complete, ul.Keys, ul.NextUID, ul.Complete)
		}
	})
}
