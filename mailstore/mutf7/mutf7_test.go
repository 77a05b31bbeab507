package mutf7

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"Grün", "Gr&APw-n"},
		{"A & B", "A &- B"},
		{"日本語", "&ZeVnLIqe-"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"😀 smile", "&2D3eAA- smile"},
		{"tab\there", "tab&AAk-here"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := Encode(tc.utf8); got != tc.mutf7 {
			t.Errorf("Encode(%q) = %q, want %q", tc.utf8, got, tc.mutf7)
		}
		for name, dec := range map[string]func(string) (string, error){"Decode": Decode, "DecodeMixed": DecodeMixed} {
			if got, err := dec(tc.mutf7); err != nil || got != tc.utf8 {
				t.Errorf("%s(%q) = %q, %v; want %q", name, tc.mutf7, got, err, tc.utf8)
			}
		}
	}
	if got := Encode("bad\xffbyte"); got != "bad&,,0-byte" {
		t.Errorf("invalid UTF-8 encoded as %q", got)
	}
}

func TestInvalid(t *testing.T) {
	for _, s := range []string{
		"&",      // unterminated
		"&Jjo",   // unterminated
		"&Jjo!-", // bad base64
		"&AGE-",  // encoded ASCII 'a'
		"&2D0-",  // lone high surrogate
		"&3gA-",  // lone low surrogate
		"&AP-",   // odd byte count
		"a\x01b", // control
		"Grün",   // raw UTF-8 (strict only)
		"&AOQ=-", // padding
		"&AOQ/-", // '/' instead of ','
		"x\x7fy", // DEL
	} {
		if _, err := Decode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q) accepted", s)
		}
	}
	if got, err := DecodeMixed("Grün &- &AOQ-"); err != nil || got != "Grün & ä" {
		t.Errorf("DecodeMixed raw UTF-8: %q %v", got, err)
	}
	for _, s := range []string{"a\x01b", "\xff", "&AGE-"} {
		if _, err := DecodeMixed(s); err == nil {
			t.Errorf("DecodeMixed(%q) accepted", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"INBOX", "Entw&APw-rfe", "&-", "&2D3eAA-", "&", "a&AGE-", "Grün"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := Decode(s); err == nil {
			if !utf8.ValidString(d) {
				t.Fatalf("Decode(%q) = %q: not UTF-8", s, d)
			}
			if e := Encode(d); e != s {
				t.Fatalf("Decode(%q) = %q re-encodes as %q", s, d, e)
			}
		}
		if d, err := DecodeMixed(s); err == nil && !utf8.ValidString(d) {
			t.Fatalf("DecodeMixed(%q) = %q: not UTF-8", s, d)
		}
		var want strings.Builder
		for _, r := range s { // one U+FFFD per invalid byte, as Encode does
			want.WriteRune(r)
		}
		enc := Encode(s)
		back, err := Decode(enc)
		if err != nil || back != want.String() {
			t.Fatalf("Encode(%q) = %q decodes to %q, %v", s, enc, back, err)
		}
	})
}
