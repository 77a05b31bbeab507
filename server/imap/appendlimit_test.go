package imap

import (
	"fmt"
	"strings"
	"testing"
)

// TestAppendLimit holds APPENDLIMIT to RFC 7889 (dovecot 2.3.19 does not
// announce it, so there is no differential case): the capability's value
// is the STATUS APPENDLIMIT of every mailbox (§4), in LIST-STATUS too,
// and a larger APPEND is refused with NO [TOOBIG] before the literal is
// sent (§3; the client sees no continuation request).
func TestAppendLimit(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("a LOGIN alice pw-alice\r\n")
	rc.until("a ")
	rc.send("b CAPABILITY\r\n")
	caps := strings.Join(rc.until("b "), "\n")
	want := fmt.Sprintf("APPENDLIMIT=%d", ts.srv.opts.AppendLimit)
	if !strings.Contains(caps, " "+want+" ") {
		t.Fatalf("CAPABILITY lacks %s: %s", want, caps)
	}
	steps := []struct{ send, want string }{
		{"c STATUS INBOX (APPENDLIMIT MESSAGES)\r\n", fmt.Sprintf("* STATUS INBOX (APPENDLIMIT %d MESSAGES 0)", ts.srv.opts.AppendLimit)},
		{"d CREATE Sub\r\n", "d OK"},
		{"e LIST \"\" Sub RETURN (STATUS (APPENDLIMIT))\r\n", fmt.Sprintf("* STATUS Sub (APPENDLIMIT %d)", ts.srv.opts.AppendLimit)},
		{fmt.Sprintf("f APPEND INBOX {%d}\r\n", ts.srv.opts.AppendLimit+1), "f NO [TOOBIG]"},
		{"g APPEND INBOX {1}\r\n", "+ "},
	}
	for _, s := range steps {
		rc.send(s.send)
		prefix := strings.Fields(s.send)[0] + " "
		if strings.HasPrefix(s.want, "+") {
			prefix = "+"
		}
		got := strings.Join(rc.until(prefix), "\n")
		if !strings.Contains(got, s.want) || (prefix != "+" && strings.Contains(got, "\n+")) || strings.HasPrefix(got, "+") && prefix != "+" {
			t.Errorf("%s: got %q, want %q (and no continuation)", strings.TrimSpace(s.send), got, s.want)
		}
	}
}
