package imap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkObjectIDs: FETCH 1:* (EMAILID THREADID) over a raw connection
// on a folder of MAILMIG_OBJECTID_MSGS messages (default 10,000, ~3 KB
// each): "cold" forgets the computed ids first (as after a restart: every
// message is read once), "warm" answers from idCaches; SEARCH THREADID
// scans the folder's cached ids.
func BenchmarkObjectIDs(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("MAILMIG_OBJECTID_MSGS")); err == nil {
		n = v
	}
	ts := startServer(b)
	st := ts.store(b, "alice")
	im, err := st.Importer("INBOX", 1234)
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)
	body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"), 45)
	for i := 1; i <= n; i++ {
		var m bytes.Buffer
		fmt.Fprintf(&m, "Subject: Re: topic %d\nMessage-ID: <%d@x>\nReferences: <%d@x>\n\n", i%500, i, i/3)
		m.Write(body)
		if err := im.Add(context.Background(), bytes.NewReader(m.Bytes()), int64(m.Len()), uint32(i), nil, base); err != nil {
			b.Fatal(err)
		}
	}
	if err := im.Commit(); err != nil {
		b.Fatal(err)
	}
	st.Close()
	rc := dialRaw(b, ts.addr)
	rc.send("l LOGIN alice pw-alice\r\ns SELECT INBOX\r\n")
	rc.until("s ")
	run := func(name, cmd string, cold bool) {
		b.Run(name, func(b *testing.B) {
			rc.send("w " + cmd + "\r\n")
			readUntil(rc, "w ")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if cold {
					b.StopTimer()
					resetIDCaches()
					b.StartTimer()
				}
				rc.nc.SetDeadline(time.Now().Add(time.Minute))
				rc.send("c " + cmd + "\r\n")
				readUntil(rc, "c ")
			}
		})
	}
	run("FETCH cold", "FETCH 1:* (EMAILID THREADID)", true)
	run("FETCH warm", "FETCH 1:* (EMAILID THREADID)", false)
	run("SEARCH THREADID warm", "SEARCH THREADID T0123456789abcdef01234567", false)
}
