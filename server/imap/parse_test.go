package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore/mutf7"
)

// newTestParser returns a parser over the first line of input; later
// lines are read for literals.
func newTestParser(t testing.TB, input string) *parser {
	r := bufio.NewReader(strings.NewReader(input + "\r\n"))
	line, err := readLine(r, nil)
	if err != nil {
		t.Fatalf("readLine: %v", err)
	}
	return &parser{r: r, line: line}
}

func TestParseStrings(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: `a "b c" d`, want: []string{"a", "b c", "d"}},
		{in: `"q\"uo\\te" x`, want: []string{`q"uo\te`, "x"}},
		{in: "{5}\r\nhello x", want: []string{"hello", "x"}},
		{in: "{5+}\r\nhel\r\n x", want: []string{"hel\r\n", "x"}},
		{in: "~{3}\r\na\x00b y", want: []string{"a\x00b", "y"}},
		{in: "{0}\r\n z", want: []string{"", "z"}},
		{in: `"unterminated`, err: true},
		{in: `"bad\escape"`, err: true},
		{in: "{5} x", err: true},
		{in: "{99999999999}\r\n", err: true},
		{in: ")", err: true},
	}
	for _, tt := range tests {
		p := newTestParser(t, tt.in)
		var got []string
		var err error
		for {
			var s string
			s, err = p.astring()
			if err != nil {
				break
			}
			got = append(got, s)
			if p.eol() {
				break
			}
			if err = p.sp(); err != nil {
				break
			}
		}
		if tt.err {
			if err == nil {
				t.Errorf("%q: parsed %q, want error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseSeqSet(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  bool
	}{
		{in: "1", want: "1"},
		{in: "1:3,5,7:*", want: "1:3,5,7:*"},
		{in: "*", want: "*"},
		{in: "0", err: true},
		{in: "1:", err: true},
		{in: "a", err: true},
		{in: "4294967296", err: true},
	}
	for _, tt := range tests {
		p := newTestParser(t, tt.in)
		set, err := p.numSet()
		if err == nil {
			err = p.end()
		}
		if tt.err != (err != nil) {
			t.Errorf("%q: err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && set.String() != tt.want {
			t.Errorf("%q: got %s, want %s", tt.in, set, tt.want)
		}
	}
}

func TestParseFetchItems(t *testing.T) {
	tests := []struct {
		in    string
		names []string
		err   bool
	}{
		{in: "FAST", names: []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE"}},
		{in: "(UID FLAGS)", names: []string{"UID", "FLAGS"}},
		{in: "BODY.PEEK[]", names: []string{"BODY[]"}},
		{in: "BODY[]<0.100>", names: []string{"BODY[]<0>"}},
		{in: "(BODY.PEEK[HEADER.FIELDS (Subject From)] RFC822.SIZE)", names: []string{"BODY[HEADER.FIELDS (SUBJECT FROM)]", "RFC822.SIZE"}},
		{in: "body[1.2.mime]", names: []string{"BODY[1.2.MIME]"}},
		{in: "BODY[2.TEXT]<10.5>", names: []string{"BODY[2.TEXT]<10>"}},
		{in: "BINARY.PEEK[1]", names: []string{"BINARY[1]"}},
		{in: "BINARY.SIZE[1]", names: []string{"BINARY.SIZE[1]"}},
		{in: "BODYSTRUCTURE", names: []string{"BODYSTRUCTURE"}},
		{in: "()", err: true},
		{in: "BODY[MIME]", err: true},
		{in: "BODY[HEADER.FIELDS ()]", err: true},
		{in: "BODY[]<1.0>", err: true},
		{in: "NOPE", err: true},
		{in: "BINARY", err: true},
	}
	for _, tt := range tests {
		p := newTestParser(t, tt.in)
		items, err := parseFetchItems(p)
		if err == nil {
			err = p.end()
		}
		if tt.err != (err != nil) {
			t.Errorf("%q: err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		var names []string
		for _, it := range items {
			names = append(names, it.name)
		}
		if strings.Join(names, ",") != strings.Join(tt.names, ",") {
			t.Errorf("%q: got %q, want %q", tt.in, names, tt.names)
		}
	}
	p := newTestParser(t, "BODY.PEEK[1.2.HEADER.FIELDS.NOT (X-A)]<5.7>")
	items, err := parseFetchItems(p)
	if err != nil {
		t.Fatal(err)
	}
	sec := items[0].section
	if !sec.Peek || len(sec.Part) != 2 || sec.Specifier != imap.PartSpecifierHeader || sec.HeaderFieldsNot[0] != "X-A" || sec.Partial.Offset != 5 || sec.Partial.Size != 7 {
		t.Errorf("section parsed as %+v", sec)
	}
}

func TestParseSearch(t *testing.T) {
	tests := []struct {
		in  string
		op  string
		err bool
	}{
		{in: "ALL", op: "ALL"},
		{in: "1:3 UNSEEN", op: "SEQ"},
		{in: "OR SEEN (FLAGGED LARGER 10)", op: "OR"},
		{in: "NOT DELETED", op: "NOT"},
		{in: `HEADER "X-Spam" "yes"`, op: "HEADER"},
		{in: "SINCE 1-Feb-2009", op: "SINCE"},
		{in: `SUBJECT {3}` + "\r\nabc", op: "HEADER"},
		{in: "UID 1:*", op: "UID"},
		{in: "SINCE 31-Foo-2009", err: true},
		{in: "OR SEEN", err: true},
		{in: "BOGUS", err: true},
		{in: "(SEEN", err: true},
	}
	for _, tt := range tests {
		p := newTestParser(t, tt.in)
		keys, err := parseSearchKeys(p, 0)
		if err == nil {
			err = p.end()
		}
		if tt.err != (err != nil) {
			t.Errorf("%q: err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && keys[0].op != tt.op {
			t.Errorf("%q: first key %s, want %s", tt.in, keys[0].op, tt.op)
		}
	}
}

func TestParseDates(t *testing.T) {
	p := newTestParser(t, `"07-Oct-2009 12:00:00 +0200"`)
	d, err := p.dateTime()
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2009, 10, 7, 10, 0, 0, 0, time.UTC)
	if !d.Equal(want) {
		t.Errorf("dateTime = %v, want %v", d, want)
	}
	p = newTestParser(t, `" 7-Oct-2009 12:00:00 -0000"`)
	if _, err := p.dateTime(); err != nil {
		t.Errorf("space-padded day: %v", err)
	}
}

func TestReadLineTooLong(t *testing.T) {
	long := strings.Repeat("a", maxLine+10) + "\r\nnext\r\n"
	r := bufio.NewReaderSize(strings.NewReader(long), 4096)
	if _, err := readLine(r, nil); !errors.Is(err, errLineTooLong) {
		t.Fatalf("err = %v, want errLineTooLong", err)
	}
	line, err := readLine(r, nil)
	if err != nil || string(line) != "next" {
		t.Fatalf("after a long line got %q, %v; want next", line, err)
	}
}

func TestMUTF7(t *testing.T) {
	tests := []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"a&b", "a&-b"},
		{"日本語", "&ZeVnLIqe-"},
		{"Ösen/Ärger", "&ANY-sen/&AMQ-rger"},
	}
	for _, tt := range tests {
		if got := mutf7.Encode(tt.utf8); got != tt.mutf7 {
			t.Errorf("encode(%q) = %q, want %q", tt.utf8, got, tt.mutf7)
		}
		got, err := mutf7.DecodeMixed(tt.mutf7)
		if err != nil || got != tt.utf8 {
			t.Errorf("decode(%q) = %q, %v; want %q", tt.mutf7, got, err, tt.utf8)
		}
	}
	if got, err := mutf7.DecodeMixed("Entwürfe &- x"); err != nil || got != "Entwürfe & x" {
		t.Errorf("decode of raw UTF-8 = %q, %v", got, err)
	}
	for _, bad := range []string{"&", "&Jjo", "&AGE-", "a\x80b", "&-&ZeV!-"} {
		if _, err := mutf7.DecodeMixed(bad); err == nil {
			t.Errorf("decode(%q) succeeded, want error", bad)
		}
	}
}

func TestCRLF(t *testing.T) {
	tests := []struct{ in, crlf string }{
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb", "a\r\nb"},
		{"", ""},
		{"x\r\r\n\n", "x\r\r\n\r\n"},
	}
	for _, tt := range tests {
		if got := string(toCRLF([]byte(tt.in), nil)); got != tt.crlf {
			t.Errorf("toCRLF(%q) = %q, want %q", tt.in, got, tt.crlf)
		}
	}
	for _, tt := range []struct{ in, lf string }{
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\rb\r", "a\rb\r"},
		{"\r\r\n", "\r\n"},
	} {
		got, err := io.ReadAll(newLFReader(strings.NewReader(tt.in)))
		if err != nil || string(got) != tt.lf {
			t.Errorf("lfReader(%q) = %q, %v; want %q", tt.in, got, err, tt.lf)
		}
	}
}

func TestWriterStrings(t *testing.T) {
	var b bytes.Buffer
	w := &writer{w: bufio.NewWriter(&b)}
	w.str("plain").sp().str(`q"x`).sp().str("two\r\nlines").sp().astr("atom").sp().astr("has space").sp().nstr("")
	w.flush()
	want := `"plain" "q\"x" {10}` + "\r\n" + `two` + "\r\n" + `lines atom "has space" NIL`
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

// FuzzParseCommand feeds arbitrary command lines (with literals) to the
// argument parsers; none may panic or loop.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"1:3,5:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.100>)",
		"OR SEEN NOT (LARGER 5 SINCE 1-Jan-2000) UID 1:*",
		`"a\"b" {3+}` + "\r\nxyz rest",
		"BODY[1.2.3.MIME] BINARY[1]",
		"~{2}\r\nab",
		`(\Seen $Junk \Deleted)`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, fn := range []func(p *parser){
			func(p *parser) { parseFetchItems(p) },
			func(p *parser) { parseSearchKeys(p, 0) },
			func(p *parser) { p.numSet() },
			func(p *parser) { p.flagList() },
			func(p *parser) {
				for i := 0; i < 10 && !p.eol(); i++ {
					if _, err := p.astring(); err != nil {
						return
					}
					p.take(' ')
				}
			},
		} {
			r := bufio.NewReader(strings.NewReader(s + "\r\n"))
			line, err := readLine(r, nil)
			if err != nil {
				return
			}
			fn(&parser{r: r, line: line})
		}
	})
}

// FuzzMUTF7 checks that decoding never panics and that encode/decode
// round-trips valid UTF-8.
func FuzzMUTF7(f *testing.F) {
	f.Add("Entw&APw-rfe")
	f.Add("日本語")
	f.Fuzz(func(t *testing.T, s string) {
		mutf7.DecodeMixed(s)
		if !strings.ContainsRune(s, '\uFFFD') && utf8.ValidString(s) {
			got, err := mutf7.DecodeMixed(mutf7.Encode(s))
			if err == nil && got != s {
				t.Errorf("round trip %q -> %q", s, got)
			}
		}
	})
}

func TestFilterHeader(t *testing.T) {
	h := []byte("From: a@b\r\nSubject: one\r\n two\r\nTo: c@d\r\nX-Long:\r\n\tcont\r\n\r\n")
	tests := []struct {
		fields []string
		not    bool
		want   string
	}{
		{[]string{"subject"}, false, "Subject: one\r\n two\r\n\r\n"},
		{[]string{"SUBJECT", "x-long"}, false, "Subject: one\r\n two\r\nX-Long:\r\n\tcont\r\n\r\n"},
		{[]string{"Subject", "X-Long"}, true, "From: a@b\r\nTo: c@d\r\n\r\n"},
		{[]string{"Nope"}, false, "\r\n"},
	}
	for _, tt := range tests {
		if got := string(filterHeader(h, tt.fields, tt.not)); got != tt.want {
			t.Errorf("filterHeader(%v, not=%v) = %q, want %q", tt.fields, tt.not, got, tt.want)
		}
	}
}

func TestHeaderCache(t *testing.T) {
	c := newHeaderCache(1600)
	for i := 0; i < 40; i++ {
		c.put(strconv.Itoa(i), bytes.Repeat([]byte{'x'}, 90))
	}
	if c.size > 1600 {
		t.Errorf("cache holds %d bytes, limit 1600", c.size)
	}
	if _, ok := c.get("0"); ok {
		t.Error("oldest entry survived eviction")
	}
	if h, ok := c.get("39"); !ok || len(h) != 90 {
		t.Errorf("newest entry: %q, %v", h, ok)
	}
	c.put("big", make([]byte, 1000))
	if _, ok := c.get("big"); ok {
		t.Error("an entry larger than a sixteenth of the cache was kept")
	}
}
