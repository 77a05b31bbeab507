package imap

import (
	"bufio"
	"bytes"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []envAddr
	}{
		{"a@example.org", []envAddr{{mailbox: "a", host: "example.org"}}},
		{`"Doe, J." <j@x.org>, b@y.org (Bee)`, []envAddr{{name: "Doe, J.", mailbox: "j", host: "x.org"}, {name: "Bee", mailbox: "b", host: "y.org"}}}, // the old comment style names the address, as in dovecot
		{"=?utf-8?q?M=C3=BCller?= <m@x.org>", []envAddr{{name: "=?utf-8?q?M=C3=BCller?=", mailbox: "m", host: "x.org"}}},
		{"K\xf6nig <k@x.org>", []envAddr{{name: "K\xf6nig", mailbox: "k", host: "x.org"}}},
		{"undisclosed-recipients:;", []envAddr{{group: "undisclosed-recipients", start: true}, {end: true}}},
		{"G: a@x, b@y;, c@z", []envAddr{{group: "G", start: true}, {mailbox: "a", host: "x"}, {mailbox: "b", host: "y"}, {end: true}, {mailbox: "c", host: "z"}}},
		{":;", []envAddr{{start: true}, {end: true}}},
		{"<@r.example:u@x.org>", []envAddr{{adl: "@r.example", mailbox: "u", host: "x.org"}}},
		{"nodomain", []envAddr{{mailbox: "nodomain", host: "MISSING_DOMAIN"}}},
		{"a@x,\r\n b@y", []envAddr{{mailbox: "a", host: "x"}, {mailbox: "b", host: "y"}}},
		{"", nil},
	}
	for _, tt := range tests {
		got := parseAddressList(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %+v, want %+v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q [%d]: got %+v, want %+v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}

// FuzzParseAddressList: any header value gives a list that encodes to a
// well-formed ENVELOPE address list.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{`"a, b" <x@y>, c@d (e)`, "G: a@b;", "<@r:u@h>", `"\" <@`, "(((", "a:b:c;;,<"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := parseAddressList(s)
		var buf bytes.Buffer
		w := &writer{w: bufio.NewWriter(&buf)}
		w.rawAddresses(l)
		w.flush()
		p := &parser{r: bufio.NewReader(bytes.NewReader(nil)), line: buf.Bytes()}
		if len(l) == 0 {
			return
		}
		// Parse it back with the command parser's string rules.
		if err := p.expect('('); err != nil {
			t.Fatalf("%q -> %q: %v", s, buf.Bytes(), err)
		}
	})
}
