package outbound

import "testing"

// The relay's name comes from its greeting (RFC 5321 §4.2, §4.3.1).
func TestGreetingName(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"220 relay.example.net ESMTP Postfix (Debian/GNU)\r", "relay.example.net"},
		{"220-mx.example.org ESMTP, multi-line\r", "mx.example.org"},
		{"220 [192.0.2.1] ready", "[192.0.2.1]"},
		{"421 busy", ""},
		{"220", ""},
		{"220 <weird> x", ""},
	} {
		g := &greetConn{line: []byte(tc.line)}
		if got := g.name(); got != tc.want {
			t.Errorf("%q: name %q, want %q", tc.line, got, tc.want)
		}
	}
}
