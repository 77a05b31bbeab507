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

// BenchmarkSortThread: SORT (DATE) and THREAD REFERENCES, warm, over a
// raw connection, on a folder of MAILMIG_SORT_MSGS messages (default
// 20,000; scripts/bench-imap compares 100,000 with dovecot).
func BenchmarkSortThread(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("MAILMIG_SORT_MSGS")); err == nil {
		n = v
	}
	ts := startServer(b)
	st := ts.store(b, "alice")
	im, err := st.Importer("INBOX", 1234)
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		var m bytes.Buffer
		fmt.Fprintf(&m, "Subject: Re: topic %d\nDate: %s\nMessage-ID: <%d@x>\nReferences: <%d@x>\n\nbody\n", i%500, base.Add(time.Duration(i*7919%n)*time.Minute).Format(time.RFC1123Z), i, i/3)
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
	for _, cmd := range []string{"SORT (DATE) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL"} {
		b.Run(cmd, func(b *testing.B) {
			rc.send("w " + cmd + "\r\n") // warm the cache
			rc.until("w ")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rc.nc.SetDeadline(time.Now().Add(time.Minute))
				rc.send("c " + cmd + "\r\n")
				rc.until("c ")
			}
		})
	}
}
