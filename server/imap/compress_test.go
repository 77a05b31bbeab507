package imap

import (
	"bufio"
	"compress/flate"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// wireCounter counts the bytes that crossed the wire.
type wireCounter struct {
	r io.Reader
	n int64
}

func (c *wireCounter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// compressCmds are RFC 4978's cases: bad mechanisms, then COMPRESS
// DEFLATE (§3's example), after which the rest travels compressed: a
// second COMPRESS (NO [COMPRESSIONACTIVE]), an APPEND with a literal, and
// a FETCH whose response spans many of the server's 4 KB buffers.
func compressCmds() (plain, deflated []string) {
	line := "All work and no play makes Jack a dull boy, says the mailing list.\r\n"
	body := "From: jack@example.org\r\nTo: alice@example.org\r\nSubject: compress me\r\n" +
		"Date: Wed, 07 Oct 2009 12:00:00 +0000\r\nMessage-ID: <deflate@example.org>\r\n\r\n" + strings.Repeat(line, 1500)
	plain = []string{"COMPRESS FOO", "COMPRESS", "COMPRESS DEFLATE X", "compress deflate"}
	deflated = []string{
		"COMPRESS DEFLATE",
		fmt.Sprintf("APPEND INBOX (\\Seen) {%d+}\r\n%s", len(body), body),
		"SELECT INBOX",
		"FETCH 1 (RFC822.SIZE BODY[])",
		"NOOP",
	}
	return plain, deflated
}

// compressedSession runs plain commands, then deflated ones on a stream
// (w, r) that switches to DEFLATE after the last plain one, and returns
// the inflated transcript and how many bytes the server sent compressed.
func compressedSession(t *testing.T, w io.Writer, r *bufio.Reader, wire *wireCounter) ([][]string, int64, int64) {
	t.Helper()
	plain, deflated := compressCmds()
	var all strings.Builder
	readUntil := func(r *bufio.Reader, tag string) {
		for {
			l, err := readResponse(r)
			all.WriteString(l)
			if err != nil {
				t.Fatalf("%v\n%s", err, all.String())
			}
			if strings.HasPrefix(l, tag) {
				return
			}
		}
	}
	for i, c := range plain {
		fmt.Fprintf(w, "t%d %s\r\n", i, c)
		readUntil(r, fmt.Sprintf("t%d ", i))
	}
	fw, _ := flate.NewWriter(w, flate.DefaultCompression)
	zr := bufio.NewReader(flate.NewReader(r))
	before := wire.n - int64(r.Buffered())
	var inflated int64
	for i, c := range deflated {
		tag := fmt.Sprintf("t%d ", len(plain)+i)
		fmt.Fprintf(fw, "%s%s\r\n", tag, c)
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		n := all.Len()
		readUntil(zr, tag)
		inflated += int64(all.Len() - n)
	}
	return splitByTag(t, all.String(), append(plain, deflated...)), wire.n - before, inflated
}

var recentRE = regexp.MustCompile(`^\* \d+ RECENT$`)

// TestDovecotCompress: the same COMPRESS session against dovecot (with
// its imap_zlib plugin) and mailmig answers the same, inflated.
func TestDovecotCompress(t *testing.T) {
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install dovecot-imapd", dovecotIMAP)
	}
	// Not t.TempDir: dovecot runs as nobody and must reach it.
	dir, err := os.MkdirTemp("", "mailmig-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "%u", "Maildir")+
		"\nnamespace inbox {\n  separator = /\n  inbox = yes\n}\n"+
		"mail_plugins = zlib\nprotocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n"), 0o644)
	d := startDovecotIMAP(t, dir, conf, nil)
	kill := time.AfterFunc(60*time.Second, func() { d.cmd.Process.Kill() })
	defer func() {
		kill.Stop()
		d.cmd.Process.Kill()
		d.stop()
	}()
	stdin, stdout := d.stdin, d.stdout
	dwire := &wireCounter{r: stdout}
	dr := bufio.NewReader(dwire)
	if l, _ := dr.ReadString('\n'); !strings.HasPrefix(l, "* PREAUTH") || !strings.Contains(l, " COMPRESS=DEFLATE") {
		t.Fatalf("dovecot greeting %q", l)
	}
	theirs, _, _ := compressedSession(t, stdin, dr, dwire)

	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	if l := strings.Join(rc.until("l "), "\n"); !strings.Contains(l, " COMPRESS=DEFLATE") {
		t.Errorf("no COMPRESS=DEFLATE in the capabilities after login: %q", l)
	}
	mwire := &wireCounter{r: rc.nc}
	mr := bufio.NewReader(mwire)
	ours, wire, inflated := compressedSession(t, rc.nc, mr, mwire)

	plain, deflated := compressCmds()
	// \Recent is recent.txt's subject, not this test's.
	noRecent := func(resp []string) string {
		return strings.Join(slices.DeleteFunc(slices.Clone(resp), func(l string) bool { return recentRE.MatchString(l) }), "\n")
	}
	for i, c := range append(plain, deflated...) {
		if a, b := noRecent(ours[i]), noRecent(theirs[i]); a != b {
			t.Errorf("%.60q\nmailmig:\n%.300s\ndovecot:\n%.300s", c, a, b)
		}
	}
	// The 100 KB FETCH really travelled compressed.
	t.Logf("mailmig sent %d bytes for %d inflated", wire, inflated)
	if inflated < 100000 || wire*10 > inflated {
		t.Errorf("mailmig sent %d bytes on the wire for %d inflated: not compressed", wire, inflated)
	}
}

// TestCompressPipelined: a client that sends its first compressed command
// right behind COMPRESS (in the same packet) is understood, and a
// session's compressor is given back between bursts.
func TestCompressPipelined(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	var z strings.Builder
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	io.WriteString(fw, "b NOOP\r\n")
	fw.Flush()
	rc.send("a COMPRESS DEFLATE\r\n" + z.String())
	if l := rc.until("a "); !strings.HasPrefix(l[len(l)-1], "a OK") {
		t.Fatalf("COMPRESS: %q", l)
	}
	zr := bufio.NewReader(flate.NewReader(rc.r))
	var got string
	for i := 0; i < 5 && !strings.HasPrefix(got, "b "); i++ {
		var err error
		if got, err = zr.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(got, "b OK") {
		t.Fatalf("NOOP behind COMPRESS: %q", got)
	}
	// IDLE and DONE through the compressed stream.
	zw := func(s string) {
		z.Reset()
		fw.Reset(&z)
		io.WriteString(fw, s)
		fw.Flush()
		rc.send(z.String())
	}
	zw("c IDLE\r\n")
	if l, _ := zr.ReadString('\n'); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	zw("DONE\r\n")
	if l, _ := zr.ReadString('\n'); !strings.HasPrefix(l, "c OK") {
		t.Fatalf("DONE: %q", l)
	}
}

// TestCompressPartialFlush: mutt's commands as zlib writes them with
// Z_PARTIAL_FLUSH (testdata/compress/mutt-partial-flush.bin: 4-byte
// big-endian length, then that many bytes, per command; made by python3's
// zlib with wbits -15, which inflates each chunk completely) must each be
// readable as soon as its chunk has arrived.
// compress/flate and klauspost/compress v1.18.0 both wait for more input
// before returning the last, longer command (inflate.go).
func TestCompressPartialFlush(t *testing.T) {
	data, err := os.ReadFile("testdata/compress/mutt-partial-flush.bin")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	lines := make(chan string)
	go func() {
		br := bufio.NewReader(newInflater(pr))
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- l
		}
	}()
	defer pw.Close()
	for len(data) > 4 {
		n := int(data[0])<<24 | int(data[1])<<16 | int(data[2])<<8 | int(data[3])
		chunk := data[4 : 4+n]
		data = data[4+n:]
		go pw.Write(chunk)
		want := 1
		if n == 47 {
			want = 2 // MYRIGHTS and SELECT in one write
		}
		for i := 0; i < want; i++ {
			select {
			case l := <-lines:
				t.Logf("%.40q", l)
			case <-time.After(2 * time.Second):
				t.Fatalf("a command compressed with Z_PARTIAL_FLUSH (%d bytes) was not inflated", n)
			}
		}
	}
}

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
