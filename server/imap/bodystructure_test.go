package imap

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// The parameter parser, on the cases dovecot was probed with (the
// differential sessions hold the whole BODYSTRUCTUREs to dovecot's).
func TestParseMIMEParams(t *testing.T) {
	for _, tc := range []struct{ in, typ, sub, want string }{
		{"TEXT/Plain; NAME=\"A\"; Charset=UTF-8", "TEXT", "Plain", "NAME=A Charset=UTF-8"},
		{"text/html; a*=x; b=1; a*1*=y%20; c*0=p; c*1=q", "text", "html", "b=1 a*=xy%20 c=pq"},
		{"text/plain; charset=us-ascii (comment); format=\"fl\\\"owed\"; =bad; x=; z=\"a;b\"", "text", "plain", "charset=us-ascii format=fl\"owed =bad x= z=a;b"},
		{"application/x; name=\"=?utf-8?q?a?=\"; y", "application", "x", "name==?utf-8?q?a?="},
		{"text", "text", "", ""},
		{"/plain", "", "", ""},
		{"text/plain; name*0*=us-ascii'en'a%20b; name*1=\"c d\"; name*2*=%41", "text", "plain", "name*=us-ascii'en'a%20bc d%41"},
	} {
		typ, sub, params := parseContentType(tc.in)
		var got []string
		for _, p := range params {
			got = append(got, p.key+"="+p.value)
		}
		if typ != tc.typ || sub != tc.sub || strings.Join(got, " ") != tc.want {
			t.Errorf("%q: got %q %q %q, want %q %q %q", tc.in, typ, sub, strings.Join(got, " "), tc.typ, tc.sub, tc.want)
		}
	}
}

func TestMatchList(t *testing.T) {
	for _, tc := range []struct {
		name, ref, pat string
		want           bool
	}{
		{"INBOX", "", "inbox", true},
		{"INBOX/child", "", "i*", true},
		{"INBOX", "", "*box", true},
		{"inboxed", "", "INBOX*", false},
		{"owatagusiam", "owatagusiam", "%", true},
		{"owatagusiam/blurdybloop", "owatagusiam", "/%", true},
		{"owatagusiam/blurdybloop", "owatagusiam/", "%", true},
		{"owatagusiam/blurdybloop", "owatagusiam/", "/%", true},
		{"a/b/c", "", "%/%", false},
		{"a/b/c", "", "%/*", true},
		{"a/b", "", "*%*%*%*%*%*%*%*%*%*%*%*%*%*%*x", false},
	} {
		if got := matchList(tc.name, tc.ref, tc.pat); got != tc.want {
			t.Errorf("matchList(%q, %q, %q) = %v", tc.name, tc.ref, tc.pat, got)
		}
	}
}

// FuzzBodyStructure: any message gives a BODYSTRUCTURE with balanced
// parentheses, without panicking.
func FuzzBodyStructure(f *testing.F) {
	for _, s := range []string{
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nhi\r\n--b--\r\n",
		"Content-Type: text/plain; a*0*=x; a*1=y; =z; (c\r\n\r\nbody",
		"From x\r\nSubject: y\r\n\r\n",
		"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: s\r\n\r\nx\r\n--d--",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ext := range []bool{false, true} {
			var b bytes.Buffer
			w := &writer{w: bufio.NewWriter(&b)}
			w.writeBodyStructure(readBodyStructure(strings.NewReader(s)), ext)
			w.flush()
			if b.Len() == 0 || b.Bytes()[0] != '(' || b.Bytes()[b.Len()-1] != ')' {
				t.Fatalf("%q: %q", s, b.String())
			}
		}
	})
}

// FuzzReadHeaderLenient: never panics, and every field it keeps has a
// name without white space.
func FuzzReadHeaderLenient(f *testing.F) {
	f.Add("Return-Path: <a@b>\nFrom test Tue Dec  1 08:49:28 2020\nDate: x\n folded\n\nbody")
	f.Add(" leading\r\nA: b\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		h, _ := readHeaderLenient(bufio.NewReader(strings.NewReader(s)))
		for fs := h.Fields(); fs.Next(); {
			if strings.ContainsAny(fs.Key(), " \t\r\n") {
				t.Fatalf("%q: field %q", s, fs.Key())
			}
		}
	})
}

// FuzzMatchList: any pattern matches in bounded time without panicking.
func FuzzMatchList(f *testing.F) {
	f.Add("INBOX/a/b", "", "i*%/%")
	f.Add("x", "x/", "/%")
	f.Fuzz(func(t *testing.T, name, ref, pat string) {
		matchList(name, ref, pat)
	})
}
