package main

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestCatenateBigURLMemory: CATENATE (RFC 4469) with URL parts of a
// 310 MB stored message — the whole message, its header and its big
// second part — and a 12 MB TEXT literal (beyond the 1 MiB literal and
// 8 MB per-command bounds, which do not apply to the message being
// appended) is assembled in a temporary file from streams: the server's
// peak RSS stays under 64 MB above what it was before, and the new
// messages hold the right bytes.
func TestCatenateBigURLMemory(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig("[limits]\nquota = \"20GB\"\nmessage_size = \"1GB\"\n"))
	c := imapLoginRaw(t, s.Addr("imaps"), "alice", "alice-pw-1")

	const hole = 310 << 20
	head := "From: big@example.org\nSubject: big url\nContent-Type: multipart/mixed; boundary=\"BB\"\n\n" +
		"--BB\nContent-Type: text/plain\n\nsmall first part\n" +
		"--BB\nContent-Type: application/octet-stream\n\n"
	tail := "\nend of part two\n--BB--\n"
	size := int64(len(head) + hole + len(tail))
	sparseMessage(t, dir, "M3P1", head, size, tail)
	check := selectBoundRSS(t, s.cmd.Process.Pid, c, "with a 310 MB message")

	start := time.Now()
	c.commandWants(t, "CATENATE URL (whole message)", "c APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\")\r\n", "c OK [APPENDUID")
	check("CATENATE URL (whole message)", start)

	start = time.Now()
	text := "X-Catenated: yes\r\n\r\n" + strings.Repeat("a TEXT part of twelve megabytes, streamed to the file\r\n", 12<<20/55)
	c.send("d APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\" TEXT {" + fmt.Sprint(len(text)) + "+}\r\n")
	c.send(text)
	c.send(" URL \"imap://alice@localhost/INBOX/;UID=1/;SECTION=2\")\r\n")
	if l := c.until("d "); !strings.HasPrefix(l, "d OK [APPENDUID") {
		t.Fatalf("CATENATE URL HEADER, TEXT, URL part 2: %q", l)
	}
	check("CATENATE URL HEADER, TEXT, URL part 2", start)

	crlfHead := strings.ReplaceAll(head, "\n", "\r\n")
	headerLen := strings.Index(crlfHead, "\r\n\r\n") + 4
	wantWhole := size + int64(strings.Count(head, "\n")+strings.Count(tail, "\n"))
	wantParts := int64(headerLen+len(text)) + hole + int64(len("\r\nend of part two"))
	start = time.Now()
	c.commandWants(t, "FETCH sizes", "e FETCH 2:3 RFC822.SIZE\r\n", "e OK")
	c.commandWants(t, "FETCH 2 size", "f FETCH 2 RFC822.SIZE\r\n", fmt.Sprintf("* 2 FETCH (RFC822.SIZE %d)", wantWhole))
	c.commandWants(t, "FETCH 3 size", "g FETCH 3 RFC822.SIZE\r\n", fmt.Sprintf("* 3 FETCH (RFC822.SIZE %d)", wantParts))
	// The bytes at the seams: the copied header, the TEXT part, the ends.
	seams := []struct {
		msg     int
		from, n int64
		want    string
	}{
		{3, 0, 39, "From: big@example.org\r\nSubject: big url"},
		{3, int64(headerLen) - 4, 24, "\r\n\r\nX-Catenated: yes\r\n\r\n"},
		{3, int64(headerLen+len(text)) - 22, 24, "streamed to the file\r\n\x80\x80"},
		{3, wantParts - 17, 17, "\r\nend of part two"},
		{2, wantWhole - 27, 27, "\r\nend of part two\r\n--BB--\r\n"},
	}
	for i, sm := range seams {
		got := c.fetchBytes(t, fmt.Sprintf("s%d FETCH %d BODY.PEEK[]<%d.%d>\r\n", i, sm.msg, sm.from, sm.n))
		if got != sm.want {
			t.Errorf("message %d at %d: %q, want %q", sm.msg, sm.from, got, sm.want)
		}
	}
	check("FETCH of the results", start)
}

// fetchBytes sends a FETCH of one literal and returns the literal.
func (c *rawConn) fetchBytes(t *testing.T, cmd string) string {
	t.Helper()
	c.send(cmd)
	l := c.until("* ")
	i := strings.LastIndexByte(l, '{')
	var n int
	if i < 0 {
		t.Fatalf("%q: no literal in %q", cmd, l)
	}
	fmt.Sscanf(l[i:], "{%d}", &n)
	b := make([]byte, n)
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c.br, b); err != nil {
		t.Fatal(err)
	}
	c.until(strings.Fields(cmd)[0] + " OK")
	return string(b)
}
