package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBigMessagePartsMemory: single MIME parts of a 300 MB message
// (BODY[n], BODY[n.MIME], BINARY[n] decoding base64, BINARY.SIZE[n]) are
// sent with the server's peak RSS staying under 64 MB above what it was
// before: the part's range comes from a streaming scan, never from the
// message read whole (server/imap/bigpart.go).
func TestBigMessagePartsMemory(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig("[limits]\nquota = \"20GB\"\n"))
	c := imapLoginRaw(t, s.Addr("imaps"), "alice", "alice-pw-1")

	// Part 2: base64 lines of 76 'A' (57 NUL octets each), ~300 MB.
	const lines = 300 << 20 / 77
	line := strings.Repeat("A", 76) + "\n"
	head := "From: big@example.org\nSubject: big parts\nContent-Type: multipart/mixed; boundary=\"BB\"\n\n" +
		"--BB\nContent-Type: text/plain\n\nsmall first part\n" +
		"--BB\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
	tail := "--BB\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8gYmFzZTY0\n--BB--\n"
	size := len(head) + lines*len(line) + len(tail)
	name := filepath.Join(dir, "mail", "alice", "Maildir", "new", fmt.Sprintf("1700000000.M2P1.test,S=%d", size))
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(head)
	for range lines {
		w.WriteString(line)
	}
	w.WriteString(tail)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.RemoveAll(filepath.Join(dir, "mail")) })

	check := selectBoundRSS(t, s.cmd.Process.Pid, c, "on a 300 MB message")
	decoded := lines * 57
	part2 := lines * (len(line) + 1) // CRLF on the wire
	cmds := []struct{ what, cmd, want string }{
		{"FETCH BODY[1]", "c FETCH 1 BODY.PEEK[1]\r\n", "BODY[1] {16}"},
		{"FETCH BODY[2]<0.100>", "d FETCH 1 BODY.PEEK[2]<0.100>\r\n", "BODY[2]<0> {100}"},
		{"FETCH BODY[2]<end-10.100>", fmt.Sprintf("e FETCH 1 BODY.PEEK[2]<%d.100>\r\n", part2-12), "BODY[2]<" + fmt.Sprint(part2-12) + "> {10}"},
		{"FETCH BODY[2.MIME]", "f FETCH 1 BODY.PEEK[2.MIME]\r\n", "BODY[2.MIME] {"},
		{"FETCH BINARY.SIZE[2]", "g FETCH 1 BINARY.SIZE[2]\r\n", fmt.Sprintf("BINARY.SIZE[2] %d", decoded)},
		{"FETCH BINARY[2]<end-60.100>", fmt.Sprintf("h FETCH 1 BINARY.PEEK[2]<%d.100>\r\n", decoded-60), fmt.Sprintf("BINARY[2]<%d> ~{60}", decoded-60)},
		// Decoded from base64: a literal8 even without a NUL, as dovecot
		// sends it (server/imap/binarydecode.go).
		{"FETCH BINARY[3]", "i FETCH 1 BINARY.PEEK[3]\r\n", "BINARY[3] ~{12}"},
	}
	for _, cm := range cmds {
		start := time.Now()
		c.commandWants(t, cm.what, cm.cmd, cm.want)
		check(cm.what, start)
	}
}
