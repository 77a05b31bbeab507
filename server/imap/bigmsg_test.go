package imap

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestBigMessageStreamSameAnswers: the streaming path for big messages
// (bigmsg.go) answers FETCH and SEARCH byte for byte as the in-memory
// path does. Two servers read the same Maildir, one streaming every
// message (BigMessage = 1).
func TestBigMessageStreamSameAnswers(t *testing.T) {
	mem := startServer(t)
	stream := startServer(t, func(o *Options, _ *ListenerOptions) {
		o.Limits.BigMessage = 1
		o.MaildirFor = mem.srv.opts.MaildirFor
	})
	msgs := []string{
		"From: a@b.test\r\nSubject: mixed Needle\r\nMessage-ID: <m1@test>\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n" +
			"preamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Language: de, en\r\n\r\nhello needle\r\nsecond line\r\n" +
			"--XX\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=m.eml\r\n\r\n" +
			"From: c@d.test\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--YY\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--YY--\r\n" +
			"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n" +
			"--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nq=3Dp soft=\r\nbreak =00nul\r\n--XX--\r\nepilogue\r\n",
		"From: e@f.test\r\nSubject: nul\r\n\r\nwith a \x00 NUL and a lone\rCR\r\nand " + strings.Repeat("long line ", 500) + "\r\n",
		"Subject: only a header\r\n\r\n",
	}
	nc, err := net.Dial("tcp", mem.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(nc, "a LOGIN alice pw-alice\r\n")
	for _, m := range msgs {
		fmt.Fprintf(nc, "b APPEND INBOX {%d+}\r\n%s\r\n", len(m), m)
	}
	io.WriteString(nc, "z LOGOUT\r\n")
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, nc)
	nc.Close()

	script := "a LOGIN alice pw-alice\r\nb EXAMINE INBOX\r\n" +
		"c FETCH 1:* (RFC822.SIZE BODYSTRUCTURE BODY ENVELOPE FLAGS)\r\n" +
		"d FETCH 1:* BODY.PEEK[]\r\n" +
		"e FETCH 1:* (BODY.PEEK[]<5.40> BODY.PEEK[TEXT]<0.7> BODY.PEEK[]<100000.5>)\r\n" +
		"f FETCH 1:* (BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[HEADER.FIELDS.NOT (Subject)] RFC822.HEADER)\r\n" +
		"g FETCH 1:* (BODY.PEEK[TEXT] RFC822 RFC822.TEXT)\r\n" +
		"p FETCH 1:* (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2.TEXT] BODY.PEEK[2.HEADER] BODY.PEEK[2.2.1] BODY.PEEK[1]<3.4> BODY.PEEK[9])\r\n" +
		"q FETCH 1:* (BODY.PEEK[2.HEADER.FIELDS (Subject)] BODY.PEEK[2.2.HEADER] BODY.PEEK[1.TEXT] BODY.PEEK[2.2.2.MIME]<2.10>)\r\n" +
		"r FETCH 1:* (BINARY.PEEK[1] BINARY.PEEK[3] BINARY.PEEK[4] BINARY.PEEK[4]<2.5> BINARY.PEEK[3]<2.2> BINARY.PEEK[]<0.9> BINARY.PEEK[7])\r\n" +
		"s FETCH 1:* (BINARY.SIZE[1] BINARY.SIZE[3] BINARY.SIZE[4] BINARY.SIZE[] BINARY.SIZE[8])\r\n" +
		"h SEARCH BODY needle\r\ni SEARCH BODY NEEDLE\r\nj SEARCH TEXT \"mixed needle\"\r\nk SEARCH TEXT nothere\r\n" +
		"l SEARCH BODY \"lone\rCR\"\r\nm SEARCH OR BODY inner SUBJECT nul\r\nn SEARCH LARGER 1000\r\n" +
		"z LOGOUT\r\n"
	run := func(addr string) string {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		go io.WriteString(nc, script)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(nc)
		return string(b)
	}
	want, got := run(mem.addr), run(stream.addr)
	if !strings.Contains(want, "h OK") || !strings.Contains(want, "BODYSTRUCTURE") ||
		!strings.Contains(want, "s OK") || !strings.Contains(want, "BINARY[3] ~{6}") ||
		!strings.Contains(want, "BINARY[4] ~{18}") || !strings.Contains(want, "BINARY.SIZE[4] 18") {
		t.Fatalf("in-memory session failed:\n%s", want)
	}
	if got != want {
		wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
		for i := range min(len(wl), len(gl)) {
			if wl[i] != gl[i] {
				t.Fatalf("streamed answer differs at line %d:\nmemory: %.300q\nstream: %.300q", i+1, wl[i], gl[i])
			}
		}
		t.Fatalf("streamed answer differs in length: %d vs %d lines", len(wl), len(gl))
	}
	// At the threshold itself: each message exactly at BigMessage
	// (streamed) and one byte below it (in memory), in one FETCH 1:*
	// with the others on either side.
	root, err := mem.srv.opts.MaildirFor("alice")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "cur", "*"))
	more, _ := filepath.Glob(filepath.Join(root, "new", "*"))
	files = append(files, more...)
	if len(files) != len(msgs) {
		t.Fatalf("%d message files in %s, want %d", len(files), root, len(msgs))
	}
	for _, name := range files {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range []int64{fi.Size(), fi.Size() + 1} {
			at := startServer(t, func(o *Options, _ *ListenerOptions) {
				o.Limits.BigMessage = th
				o.MaildirFor = mem.srv.opts.MaildirFor
			})
			if got := run(at.addr); got != want {
				t.Errorf("BigMessage = %d (file %s of %d bytes): answers differ from the in-memory path", th, filepath.Base(name), fi.Size())
			}
		}
	}
}

func TestCRLFReader(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb", "a\r\nb"},
		{"\n\n", "\r\n\r\n"},
		{"x\ry\x00\n", "x\ry\x80\r\n"},
	} {
		got, _ := io.ReadAll(newCRLFReader(strings.NewReader(tc.in), true))
		if string(got) != tc.want {
			t.Errorf("%q: got %q want %q", tc.in, got, tc.want)
		}
		// A CR at the end of one read and its LF in the next.
		got, _ = io.ReadAll(newCRLFReader(iotest.OneByteReader(strings.NewReader(tc.in)), true))
		if string(got) != tc.want {
			t.Errorf("%q byte by byte: got %q want %q", tc.in, got, tc.want)
		}
	}
	if !streamSearch(strings.NewReader("Subject: x\r\n\r\n"+strings.Repeat("a", 70000)+"NeEdLe"), "needle", false) {
		t.Error("needle across a chunk boundary not found")
	}
	if streamSearch(strings.NewReader("Subject: needle\r\n\r\nbody"), "needle", false) {
		t.Error("BODY search matched the header")
	}
}
