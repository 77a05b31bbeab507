package imap

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCommands measures single commands over loopback against a
// 200-message INBOX, from parallel sessions of one user.
func BenchmarkCommands(b *testing.B) {
	ts := startServer(b)
	st := ts.store(b, "alice")
	f, err := st.Folder("INBOX")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		msg := testMessage(fmt.Sprintf("bench %d", i), strings.Repeat("The quick brown fox jumps over the lazy dog.\r\n", 60))
		if _, err := f.Append(context.Background(), strings.NewReader(msg), nil, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct{ name, cmd string }{
		{"fetch-headers", "FETCH %d:%d (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE MESSAGE-ID)])"},
		{"fetch-body", "FETCH %d BODY.PEEK[]"},
		{"store", "STORE %d +FLAGS (\\Flagged)"},
		{"select", "SELECT INBOX"},
		{"noop", "NOOP"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				rc := dialRaw(b, ts.addr)
				rc.send("a LOGIN alice pw-alice\r\nb SELECT INBOX\r\n")
				readUntil(rc, "b ")
				for pb.Next() {
					i := int(n.Add(1))%180 + 1
					cmd := bc.cmd
					switch strings.Count(cmd, "%d") {
					case 2:
						cmd = fmt.Sprintf(cmd, i, i+19)
					case 1:
						cmd = fmt.Sprintf(cmd, i)
					}
					rc.send("c " + cmd + "\r\n")
					readUntil(rc, "c ")
				}
				rc.nc.Close()
			})
		})
	}
}

// readUntil reads lines (skipping literals' contents loosely) up to one
// starting with prefix.
func readUntil(rc *rawConn, prefix string) {
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			panic(err)
		}
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
			var n int
			fmt.Sscanf(l[i:], "{%d}", &n)
			buf := make([]byte, n)
			if _, err := io.ReadFull(rc.r, buf); err != nil {
				panic(err)
			}
			continue
		}
		if strings.HasPrefix(l, prefix) {
			return
		}
	}
}
