package mbox

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

type got struct {
	Offset   int64
	UID      uint32
	Problem  string
	Flags    []string
	Keywords []string
	Recent   bool
	Date     string
	Text     string
}

func readAll(t testing.TB, in string, opts Options) ([]got, *Reader, error) {
	t.Helper()
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Name == "" {
		opts.Name = "test.mbox"
	}
	r := NewReader(strings.NewReader(in), opts)
	var out []got
	for {
		m, err := r.Next()
		if err == io.EOF {
			return out, r, nil
		}
		if err != nil {
			return out, r, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return out, r, err
		}
		out = append(out, got{m.Offset, m.UID, m.UIDProblem, m.Flags, m.Keywords, m.Recent, m.Date.UTC().Format(time.DateTime), string(b)})
	}
}

const pseudo = "From MAILER-DAEMON Wed Oct  7 12:00:00 2009\n" +
	"Date: Wed, 7 Oct 2009 12:00:00 +0000\n" +
	"From: Mail System Internal Data <MAILER-DAEMON@example.org>\n" +
	"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n" +
	"X-IMAP: 1254916800 0000000012 $Label1 Junk\n" +
	"Status: RO\n" +
	"\n" +
	"This text is part of the internal format of your mail folder, and is not\n" +
	"a real message.\n" +
	"\n"

func TestReader(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		opts      Options
		want      []got
		uidv      uint32
		uidNext   uint32
		keywords  []string
		wantError bool
	}{
		{
			name: "pseudo and bookkeeping",
			in: pseudo +
				"From alice@example.org Thu Oct  8 09:30:00 2009\n" +
				"Subject: one\n" +
				"Status: RO\n" +
				"X-Status: AF\n" +
				"X-Keywords: $Label1 Junk\n" +
				"X-UID: 7\n" +
				"\n" +
				"body one\n" +
				"From here on, body\n" +
				"\n" +
				">From quoted\n" +
				"\n" +
				"From bob Fri Oct  9 10:00:00 2009\n" +
				"Subject: two\n" +
				"X-UID: 9\n" +
				"Status: O\n" +
				"X-Status: DT\n" +
				"\n" +
				"body two\n" +
				"\n",
			want: []got{
				{Offset: int64(len(pseudo)), UID: 7, Flags: []string{`\Answered`, `\Flagged`, `\Seen`}, Keywords: []string{"$Label1", "Junk"}, Date: "2009-10-08 09:30:00",
					Text: "Subject: one\n\nbody one\nFrom here on, body\n\n>From quoted\n"},
				{Offset: int64(len(pseudo)) + 163, UID: 9, Flags: []string{`\Deleted`, `\Draft`}, Date: "2009-10-09 10:00:00", Text: "Subject: two\n\nbody two\n"},
			},
			uidv: 1254916800, uidNext: 13, keywords: []string{"$Label1", "Junk"},
		},
		{
			name: "invalid separator after blank is body",
			in:   "From a Wed Oct  7 12:00:00 2009\nSubject: x\n\nhello\n\nFrom the desk of someone\nFrom a Wed Oct  7 12:00:00 2009 but not\n",
			want: []got{{UID: 1, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00",
				Text: "Subject: x\n\nhello\n\nFrom the desk of someone\nFrom a Wed Oct  7 12:00:00 2009 but not\n"}},
			uidNext: 2,
		},
		{
			name:    "mboxrd unescape",
			in:      "From a Wed Oct  7 12:00:00 2009\n\n>From x\n>>From y\n> From z\n",
			opts:    Options{UnescapeFrom: true},
			want:    []got{{UID: 1, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: "\nFrom x\n>From y\n> From z\n"}},
			uidNext: 2,
		},
		{
			name: "crlf",
			in:   "From a Wed Oct  7 12:00:00 2009\r\nSubject: x\r\nX-UID: 3\r\nStatus: R\r\n\r\nbody\r\n\r\nFrom b Wed Oct  7 12:00:01 2009\r\nSubject: y\r\n\r\nz\r\n\r\n",
			want: []got{
				{UID: 1, Problem: "missing", Flags: []string{`\Seen`}, Recent: true, Date: "2009-10-07 12:00:00", Text: "Subject: x\r\n\r\nbody\r\n"},
				{Offset: 76, UID: 2, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:01", Text: "Subject: y\r\n\r\nz\r\n"},
			},
			uidNext: 3,
		},
		{
			name:    "last message without final newline",
			in:      "From a Wed Oct  7 12:00:00 2009\nSubject: x\n\nno newline",
			want:    []got{{UID: 1, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: "Subject: x\n\nno newline"}},
			uidNext: 2,
		},
		{
			name:    "trailing blank lines",
			in:      "From a Wed Oct  7 12:00:00 2009\n\nb\n\n\n\nFrom a Wed Oct  7 12:00:00 2009\n",
			want:    []got{{UID: 1, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: "\nb\n\n\n"}, {Offset: 38, UID: 2, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: ""}},
			uidNext: 3,
		},
		{
			name:    "header only, no blank line",
			in:      "From a Wed Oct  7 12:00:00 2009\nSubject: x\n\nFrom a Wed Oct  7 12:00:00 2009\nSubject: y\n",
			want:    []got{{UID: 1, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: "Subject: x\n"}, {Offset: 44, UID: 2, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: "Subject: y\n"}},
			uidNext: 3,
		},
		{
			name: "mmdf",
			in:   "\x01\x01\x01\x01\nFrom a Wed Oct  7 12:00:00 2009\nStatus: RO\n\nbody\n\n\x01\x01\x01\x01\n\x01\x01\x01\x01\nSubject: x\n\nb\n\x01\x01\x01\x01\nSubject: y\n\nc\n",
			opts: Options{ModTime: time.Date(2001, 1, 2, 3, 4, 5, 0, time.UTC)},
			want: []got{
				{UID: 1, Problem: "missing", Flags: []string{`\Seen`}, Date: "2009-10-07 12:00:00", Text: "\nbody\n\n"},
				{Offset: 60, UID: 2, Problem: "missing", Recent: true, Date: "2001-01-02 03:04:05", Text: "Subject: x\n\nb\n"},
				// one delimiter between two messages: c-client reads it as both
				{Offset: 79, UID: 3, Problem: "missing", Recent: true, Date: "2001-01-02 03:04:05", Text: "Subject: y\n\nc\n"},
			},
			uidNext: 4,
		},
		{name: "empty", in: ""},
		{name: "blank", in: "\n\n"},
		{name: "not mbox", in: "Subject: hello\n\nbody\n", wantError: true},
		{
			name: "X-IMAPbase and bad UIDs",
			in: "From a Wed Oct  7 12:00:00 2009\nX-IMAPbase: 99 20 Work\nX-UID: 5\nSubject: a\n\n1\n\n" +
				"From a Wed Oct  7 12:00:00 2009\nX-UID: 5\n\n2\n\n" +
				"From a Wed Oct  7 12:00:00 2009\nX-UID: 4\n\n3\n\n" +
				"From a Wed Oct  7 12:00:00 2009\nX-UID: abc\n\n4\n\n" +
				"From a Wed Oct  7 12:00:00 2009\nX-UID: 30\n\n5\n\n" +
				"From a Wed Oct  7 12:00:00 2009\n\n6\n",
			want: []got{
				{UID: 5, Recent: true, Date: "2009-10-07 12:00:00", Text: "Subject: a\n\n1\n"},
				{Offset: 79, UID: 21, Problem: "not increasing", Recent: true, Date: "2009-10-07 12:00:00", Text: "\n2\n"},
				{Offset: 124, UID: 22, Problem: "ignored after an earlier bad X-UID", Recent: true, Date: "2009-10-07 12:00:00", Text: "\n3\n"},
				{Offset: 169, UID: 23, Problem: "ignored after an earlier bad X-UID", Recent: true, Date: "2009-10-07 12:00:00", Text: "\n4\n"},
				{Offset: 216, UID: 24, Problem: "ignored after an earlier bad X-UID", Recent: true, Date: "2009-10-07 12:00:00", Text: "\n5\n"},
				{Offset: 262, UID: 25, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: "\n6\n"},
			},
			// c-client drops the UIDVALIDITY after a bad X-UID
			uidv: 0, uidNext: 26, keywords: []string{"Work"},
		},
		{
			name: "folded keywords and bad keyword",
			in:   "From a Wed Oct  7 12:00:00 2009\nX-IMAPbase: 7 9 one Two\nX-Keywords: one\n two\n\tone (bad\nX-UID: 1\nTo: x,\n y\n\nb\n",
			// c-client reads the first line only
			want: []got{{UID: 1, Keywords: []string{"one"}, Recent: true, Date: "2009-10-07 12:00:00", Text: "To: x,\n y\n\nb\n"}},
			uidv: 7, uidNext: 10, keywords: []string{"one", "Two"},
		},
		{
			name: "keywords as c-client: declared only, any case, CRLF",
			in:   "From a Wed Oct  7 12:00:00 2009\r\nX-IMAPbase: 7 9 one Two\r\nX-Keywords: TWO three one\r\n\r\nb\r\n",
			want: []got{{UID: 10, Problem: "missing", Keywords: []string{"Two", "one"}, Recent: true, Date: "2009-10-07 12:00:00", Text: "\r\nb\r\n"}},
			uidv: 7, uidNext: 11, keywords: []string{"one", "Two"},
		},
		{
			name:    "long lines with a small buffer",
			in:      "From a Wed Oct  7 12:00:00 2009\nSubject: " + strings.Repeat("s", 300) + "\nX-UID: 2\n\n" + strings.Repeat("b", 500) + "\n\nFrom " + strings.Repeat("x", 300) + "\n",
			opts:    Options{BufferSize: 128},
			want:    []got{{UID: 1, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: "Subject: " + strings.Repeat("s", 300) + "\n\n" + strings.Repeat("b", 500) + "\n\nFrom " + strings.Repeat("x", 300) + "\n"}},
			uidNext: 2,
		},
		{
			name:    "header too long",
			in:      "From a Wed Oct  7 12:00:00 2009\nA: 1\nB: 2\nX-UID: 5\n\nb\n",
			opts:    Options{MaxHeader: 10},
			want:    []got{{UID: 1, Problem: "missing", Recent: true, Date: "2009-10-07 12:00:00", Text: "A: 1\nB: 2\nX-UID: 5\n\nb\n"}},
			uidNext: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs, r, err := readAll(t, tc.in, tc.opts)
			if tc.wantError {
				var fe *FormatError
				if !errors.As(err, &fe) || !errors.Is(err, ErrNotMbox) || fe.Offset != 0 || !strings.Contains(err.Error(), "test.mbox at byte 0") {
					t.Fatalf("err = %v, want FormatError at byte 0", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(tc.want) {
				t.Fatalf("got %d messages, want %d: %+v", len(msgs), len(tc.want), msgs)
			}
			for i := range msgs {
				if !reflect.DeepEqual(msgs[i], tc.want[i]) {
					t.Errorf("message %d:\n got %+v\nwant %+v", i, msgs[i], tc.want[i])
				}
			}
			if tc.uidNext != 0 && r.UIDNext() != tc.uidNext {
				t.Errorf("UIDNext %d, want %d", r.UIDNext(), tc.uidNext)
			}
			if r.UIDValidity() != tc.uidv {
				t.Errorf("UIDValidity %d, want %d", r.UIDValidity(), tc.uidv)
			}
			if !reflect.DeepEqual(r.Keywords(), tc.keywords) {
				t.Errorf("Keywords %q, want %q", r.Keywords(), tc.keywords)
			}
		})
	}
}

func TestParseFromLine(t *testing.T) {
	tests := []struct {
		line   string
		ok     bool
		sender string
		date   string
	}{
		{"From alice@example.org Wed Oct  7 12:00:00 2009\n", true, "alice@example.org", "2009-10-07T12:00:00Z"},
		{"From alice Wed Oct 07 12:00:00 2009\r\n", true, "alice", "2009-10-07T12:00:00Z"},
		{"From alice Wed Oct  7 12:00 2009", true, "alice", "2009-10-07T12:00:00Z"},
		{"From alice Wed Oct  7 12:00:00 PDT 2009", true, "alice", "2009-10-07T12:00:00-07:00"},
		{"From alice Wed Oct  7 12:00:00 2009 -0200", true, "alice", "2009-10-07T12:00:00-02:00"},
		{"From alice Wed Oct  7 12:00:00 +0100 2009", true, "alice", "2009-10-07T12:00:00+01:00"},
		{"From \"a b\"@x Wed Oct  7 12:00:00 2009", true, "\"a b\"@x", "2009-10-07T12:00:00Z"},
		{"From  Wed Oct  7 12:00:00 2009", true, "", "2009-10-07T12:00:00Z"},
		{"From uucp Wed Oct  7 12:00:00 2009 remote from gate", true, "uucp", "2009-10-07T12:00:00Z"},
		{"From alice Wed Oct  7 12:00:00 09", false, "", ""},
		{"From alice Wed Oct  7 12:00:00 1998 MEST", false, "", ""},
		{"From alice Wed Oct  7 12:00:00 2009\x00\n", false, "", ""},
		{"From alice Wed Oct  7 12:00:00 CET 2009", true, "alice", "2009-10-07T12:00:00Z"},
		{"From alice Xyz Abc 77 12:00:01 2009", true, "alice", "1970-01-01T00:00:00Z"},
		{"From here on, we go", false, "", ""},
		{"From alice Wed Oct  7 2009", false, "", ""},
		// VALID looks at positions only: c-client starts a message here and
		// keeps what its date parser managed to read.
		{"From alice Wed Oct 32 12:00:00 2009", true, "alice", "1970-01-01T00:00:00Z"},
		{"From alice Wed Foo  7 12:00:00 2009", true, "alice", "1970-01-01T00:00:00Z"},
		{"From alice Wed Oct  7 25:00:00 2009", true, "alice", "2009-10-07T00:00:00Z"},
		{"From alice Wed Oct  7 12:00:00 2009 and more words", false, "", ""},
		{">From alice Wed Oct  7 12:00:00 2009", false, "", ""},
		{"from alice Wed Oct  7 12:00:00 2009", false, "", ""},
	}
	for _, tc := range tests {
		sender, date, ok := ParseFromLine([]byte(tc.line), time.UTC)
		if ok != tc.ok {
			t.Errorf("%q: ok = %v", tc.line, ok)
			continue
		}
		if !ok {
			continue
		}
		if sender != tc.sender || date.Format(time.RFC3339) != tc.date {
			t.Errorf("%q: %q %s, want %q %s", tc.line, sender, date.Format(time.RFC3339), tc.sender, tc.date)
		}
	}
	line := FormatFromLine("x@y", time.Date(2009, 10, 7, 1, 2, 3, 0, time.UTC))
	if line != "From x@y Wed Oct  7 01:02:03 2009\n" {
		t.Errorf("FormatFromLine = %q", line)
	}
}

// A message bigger than any buffer streams through with bounded memory.
func TestLargeMessageStreams(t *testing.T) {
	const size = 64 << 20
	body := io.MultiReader(
		strings.NewReader("From a Wed Oct  7 12:00:00 2009\nSubject: big\nX-UID: 1\n\n"),
		io.LimitReader(repeatReader("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), size),
		strings.NewReader("\nFrom b Wed Oct  7 12:00:00 2009\n\nsmall\n"),
	)
	r := NewReader(body, Options{Location: time.UTC})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("streaming %d bytes allocated %d bytes", n, alloc)
	}
	if err != nil || n != size+int64(len("Subject: big\n\n")) || m.UID != 1 {
		t.Fatalf("n=%d err=%v uid=%d", n, err, m.UID)
	}
	m, err = r.Next()
	if err != nil || m.UID != 2 {
		t.Fatalf("second: %v %v", m, err)
	}
	b, _ := io.ReadAll(r)
	if string(b) != "\nsmall\n" {
		t.Errorf("second text %q", b)
	}
}

type repeatReader string

func (s repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], s)
	}
	return n, nil
}

func FuzzReader(f *testing.F) {
	f.Add([]byte(pseudo + "From a Wed Oct  7 12:00:00 2009\nX-UID: 3\nStatus: RO\nX-Status: AFTD\nX-Keywords: a b\n\nbody\n>From x\n\nFrom y\n\n"))
	f.Add([]byte("From a Wed Oct  7 12:00:00 2009\r\nSubject: x\r\n\r\nb\r\n\r\nFrom a Wed Oct  7 12:00 PDT 2009\r\n\r\nno newline"))
	f.Add([]byte("From a Wed Oct  7 12:00:00 2009\nX-IMAPbase: 1 2\nX-UID: 9\n\n\n\n"))
	f.Add([]byte("\x01\x01\x01\x01\nFrom a Wed Oct  7 12:00:00 2009\nStatus: RO\n\nbody\n\x01\x01\x01\x01\n\x01\x01\x01\x01\nSubject: no date\n\nb\n\x01\x01\x01\x01\n"))
	f.Add([]byte("\x01\x01\x01\x01\nX-IMAP: 5 7 a\n\n\x01\x01\x01\x01\nX-UID: 6\n\nb\n\x01\x01\x01\x01\nX: one delimiter between\n"))
	f.Add([]byte("not an mbox\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		// Two buffer sizes must agree (every valid From_ line fits in
		// 1 KiB), the output never exceeds the input, and no panic.
		a, ra, erra := readAll(t, string(in), Options{BufferSize: 1024, MaxHeader: 4096})
		b, _, errb := readAll(t, string(in), Options{BufferSize: 64 << 10, MaxHeader: 4096})
		if (erra == nil) != (errb == nil) {
			t.Fatalf("errors differ: %v / %v", erra, errb)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("buffer sizes disagree:\n%+v\n%+v", a, b)
		}
		total := 0
		var last uint32
		for _, m := range a {
			total += len(m.Text)
			if m.UID <= last {
				t.Fatalf("UIDs not increasing: %d after %d", m.UID, last)
			}
			last = m.UID
			if !bytes.Contains(in, []byte(m.Text)) && !strings.Contains(m.Text, "\n") {
				t.Fatalf("text %q not from the input", m.Text)
			}
		}
		if total > len(in) {
			t.Fatalf("%d bytes out of %d in", total, len(in))
		}
		if erra == nil && len(a) > 0 && ra.UIDNext() <= last {
			t.Fatalf("UIDNext %d <= last UID %d", ra.UIDNext(), last)
		}
	})
}

// BenchmarkOver2GB reads a 2.2 GB mbox (one huge message, then a small
// one past the 2 GiB mark) and checks offsets and sizes; heavy, so not part
// of the test suite: go test -run XXX -bench Over2GB ./migrate/mbox
func BenchmarkOver2GB(b *testing.B) {
	const size = 2<<30 + 200<<20
	for i := 0; i < b.N; i++ {
		head := "From a Wed Oct  7 12:00:00 2009\nSubject: huge\n\n"
		in := io.MultiReader(strings.NewReader(head),
			io.LimitReader(repeatReader("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), size),
			strings.NewReader("\nFrom b Wed Oct  7 12:00:00 2009\n\nafter\n"))
		r := NewReader(in, Options{Location: time.UTC})
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		if err != nil || n != size+int64(len("Subject: huge\n\n")) {
			b.Fatalf("n=%d err=%v", n, err)
		}
		m, err := r.Next()
		if err != nil || m.Offset != int64(len(head))+size+1 {
			b.Fatalf("second message at %v (%v)", m, err)
		}
		b.SetBytes(size)
	}
}
