package imap

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestBaseSubject(t *testing.T) {
	tests := []struct {
		in, want string
		reply    bool
	}{
		{"Hello", "HELLO", false},
		{"Re: hello", "HELLO", true},
		{"RE: Re: re:hello", "HELLO", true},
		{"Fwd: hello (fwd)", "HELLO", true},
		{"[list] Re: hello", "HELLO", true},
		{"Re [list]: hello", "HELLO", true},
		{"[Fwd: hello]", "HELLO", true},
		{"[Fwd: Re: [x] hello  world ]", "HELLO WORLD", true},
		{"[only blob]", "[ONLY BLOB]", false},
		{"[a] [b] subject", "SUBJECT", false},
		{"re: re:   ", "", true},
		{"  spaced\t\tout  ", "SPACED OUT", false},
		{"=?utf-8?q?=C3=A4pfel?=", "A\u0308PFEL", false},
		{"Fw: RE: [x] [y] re: Apples", "APPLES", true},
		{"refresh", "REFRESH", false},
		{"Re:", "", true},
		{"", "", false},
	}
	for _, tc := range tests {
		got, reply := baseSubject(tc.in)
		if got != tc.want || reply != tc.reply {
			t.Errorf("baseSubject(%q) = %q, %v; want %q, %v", tc.in, got, reply, tc.want, tc.reply)
		}
	}
}

// FuzzBaseSubject: no panic, no leading or trailing space, and the base
// subject of a base subject is itself for ASCII (titlecase and NFKD are
// not idempotent for all of Unicode: "ǌ" becomes "Nj").
func FuzzBaseSubject(f *testing.F) {
	for _, s := range []string{"Re: [x] Fwd: a (fwd)", "[Fwd: [Fwd: b]]", "=?utf-8?b?w6Q=?= re:", "[[]]", "re [a]: [b]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, _ := baseSubject(s)
		if strings.HasPrefix(b, " ") || strings.HasSuffix(b, " ") {
			t.Fatalf("%q -> %q", s, b)
		}
		if b2, _ := baseSubject(b); b2 != b && !strings.Contains(b, "=?") && isASCII(s) {
			t.Fatalf("%q -> %q -> %q", s, b, b2)
		}
	})
}

// FuzzThreadReferences: any reference graph threads every message exactly
// once, and the output's parentheses balance.
func FuzzThreadReferences(f *testing.F) {
	f.Add([]byte{1, 0, 2, 1, 3, 1, 2, 4, 9, 5, 5, 5})
	f.Add([]byte{1, 2, 2, 1, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 300 {
			return
		}
		var nodes []*threadNode
		var infos []threadInfo
		for i := 0; i+1 < len(data); i += 3 {
			n := uint32(len(nodes) + 1)
			ti := threadInfo{msgID: uint64(data[i] % 16), date: int64(data[i+1] % 4), subj: uint64(data[i+1] % 3), reply: data[i+1]&8 != 0}
			if i+2 < len(data) {
				for _, r := range []byte{data[i+2] % 16, data[i+2] / 16} {
					if r != 0 {
						ti.refs = append(ti.refs, uint64(r))
					}
				}
			}
			infos = append(infos, ti)
			nodes = append(nodes, &threadNode{num: n, seq: n, date: ti.date, subj: ti.subj, reply: ti.reply})
		}
		for _, refs := range []bool{false, true} {
			ns := make([]*threadNode, len(nodes))
			for i, n := range nodes {
				c := *n
				ns[i] = &c
			}
			var b strings.Builder
			for _, r := range threadReferences(ns, slices.Clone(infos), refs) {
				writeThread(&b, r, true)
			}
			out := b.String()
			depth := 0
			for _, c := range out {
				switch c {
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth < 0 {
					t.Fatalf("unbalanced %q", out)
				}
			}
			nums := strings.FieldsFunc(out, func(r rune) bool { return r == '(' || r == ')' || r == ' ' })
			if depth != 0 || len(nums) != len(nodes) {
				t.Fatalf("%d messages threaded as %q", len(nodes), out)
			}
			seen := map[string]bool{}
			for _, n := range nums {
				if seen[n] {
					t.Fatalf("%s twice in %q", n, out)
				}
				seen[n] = true
			}
		}
		ns := make([]*threadNode, len(nodes))
		for i, n := range nodes {
			c := *n
			ns[i] = &c
		}
		var b strings.Builder
		for _, r := range threadOrderedSubject(ns) {
			writeThread(&b, r, true)
		}
		if got := len(strings.FieldsFunc(b.String(), func(r rune) bool { return r == '(' || r == ')' || r == ' ' })); got != len(nodes) {
			t.Fatalf("ORDEREDSUBJECT: %d of %d in %q", got, len(nodes), b.String())
		}
	})
}

// TestSortThreadAnswerCache: a kept SORT or THREAD answer is reused only
// while the folder and the session's view are unchanged, and never for
// UID and sequence numbers alike.
func TestSortThreadAnswerCache(t *testing.T) {
	old := minCachedResult
	minCachedResult = 1
	defer func() { minCachedResult = old }()
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	for i := 0; i < 6; i++ {
		msg := fmt.Sprintf("Subject: s%d\r\nMessage-ID: <%d@x>\r\nReferences: <%d@x>\r\nDate: Wed, 07 Oct 2009 12:%02d:00 +0000\r\n\r\nx\r\n", i%2, i, i/2, 59-i)
		rc.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
		rc.until("a ")
	}
	rc.send("s SELECT INBOX\r\ne STORE 1 +FLAGS (\\Deleted)\r\nx EXPUNGE\r\n")
	rc.until("x ")
	answer := func(cmd string) string {
		t.Helper()
		rc.send("c " + cmd + "\r\n")
		lines := rc.until("c ")
		if !strings.HasPrefix(lines[len(lines)-1], "c OK") {
			t.Fatalf("%s: %v", cmd, lines)
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "* SORT") || strings.HasPrefix(l, "* THREAD") {
				return l
			}
		}
		t.Fatalf("%s: no answer in %v", cmd, lines)
		return ""
	}
	for _, cmd := range []string{"SORT (DATE) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL"} {
		first := answer(cmd)
		if again := answer(cmd); again != first {
			t.Errorf("%s: %q then %q", cmd, first, again)
		}
		if u := answer("UID " + cmd); u == first {
			t.Errorf("UID %s answered like %s: %q", cmd, cmd, u)
		}
	}
	sorted, threaded := answer("SORT (DATE) UTF-8 ALL"), answer("THREAD REFERENCES UTF-8 ALL")
	msg := "Subject: s0\r\nMessage-ID: <new@x>\r\nReferences: <1@x>\r\nDate: Wed, 07 Oct 2009 11:00:00 +0000\r\n\r\nx\r\n"
	rc.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	rc.until("a ")
	if got := answer("SORT (DATE) UTF-8 ALL"); got == sorted || !strings.HasPrefix(got, "* SORT 6 ") {
		t.Errorf("after an APPEND SORT says %q (before %q)", got, sorted)
	}
	if got := answer("THREAD REFERENCES UTF-8 ALL"); got == threaded || !strings.Contains(got, "6") {
		t.Errorf("after an APPEND THREAD says %q (before %q)", got, threaded)
	}
}
