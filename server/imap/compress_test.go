package imap

import (
	"bufio"
	"compress/flate"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// flateConn is the client side of RFC 4978: DEFLATE both ways.
type flateConn struct {
	r  *bufio.Reader
	fw *flate.Writer
}

func (f *flateConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(f.fw, s); err != nil {
		t.Fatal(err)
	}
	if err := f.fw.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (f *flateConn) until(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	for i := 0; i < 1000; i++ {
		l, err := f.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v after %q", err, out)
		}
		l = strings.TrimRight(l, "\r\n")
		out = append(out, l)
		if strings.HasPrefix(l, prefix) {
			return out
		}
	}
	t.Fatalf("no %q in %q", prefix, out)
	return nil
}

// TestCompressDeflate: after COMPRESS DEFLATE (RFC 4978) the session goes
// on in DEFLATE both ways, a command sent together with nothing else is
// answered at once (sync flush), a second COMPRESS is refused with
// COMPRESSIONACTIVE, and what the server sends is compressed.
func TestCompressDeflate(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	rc.send("c COMPRESS DEFLATE\r\n")
	if l := rc.until("c "); !strings.HasPrefix(l[len(l)-1], "c OK") {
		t.Fatalf("COMPRESS: %v", l)
	}
	fw, _ := flate.NewWriter(rc.nc, flate.BestSpeed)
	// What comes from the server: kept raw too, to check it is not text.
	var raw strings.Builder
	fc := &flateConn{r: bufio.NewReader(flate.NewReader(io.TeeReader(rc.r, &raw))), fw: fw}
	body := strings.Repeat("compressible line of text\r\n", 200)
	msg := fmt.Sprintf("Subject: z\r\n\r\n%s", body)
	fc.send(t, fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	if l := fc.until(t, "a "); !strings.HasPrefix(l[len(l)-1], "a OK") {
		t.Fatalf("APPEND: %v", l)
	}
	fc.send(t, "s SELECT INBOX\r\n")
	fc.until(t, "s OK")
	fc.send(t, "f FETCH 1 BODY.PEEK[TEXT]\r\n")
	rc.nc.SetDeadline(time.Now().Add(10 * time.Second))
	lines := fc.until(t, "f ")
	if got := strings.Join(lines, "\r\n"); !strings.Contains(got, "compressible line of text") || !strings.HasPrefix(lines[len(lines)-1], "f OK") {
		t.Fatalf("FETCH: %q", got)
	}
	fc.send(t, "c2 COMPRESS DEFLATE\r\n")
	if l := fc.until(t, "c2 "); !strings.HasPrefix(l[len(l)-1], "c2 NO [COMPRESSIONACTIVE]") {
		t.Fatalf("second COMPRESS: %v", l)
	}
	if strings.Contains(raw.String(), "compressible line of text") || raw.Len() > len(body)/4 {
		t.Errorf("the server's %d bytes are not compressed", raw.Len())
	}
	fc.send(t, "z LOGOUT\r\n")
	fc.until(t, "z OK")
}
