package outbound

import (
	"context"
	"os"
	"testing"
)

// FuzzSpoolEntry feeds arbitrary envelope files (a damaged spool) to the
// runner: it must neither panic nor lose the message file of an entry it
// cannot read.
func FuzzSpoolEntry(f *testing.F) {
	f.Add([]byte(`{"id":"1.x","from":"a@example.org","pending":["b@example.org"],"created":"2026-01-01T00:00:00Z","next_attempt":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"1.x","from":"","pending":[],"failed":[{"rcpt":"c@d","code":550,"text":"x"}]}`))
	f.Add([]byte(`{"id":"1.x","pending":null,"attempts":-5}`))
	f.Add([]byte(`{"id":"other"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, meta []byte) {
		local := &fakeLocal{}
		q := newQueue(t, nil, local)
		if err := q.init(); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(q.msgPath("1.x"), []byte(testMsg), 0o600)
		os.WriteFile(q.metaPath("1.x"), meta, 0o600)
		ctx := context.Background()
		for i := 0; i < 3; i++ {
			if _, err := q.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(q.metaPath("1.x")); err == nil {
			if _, err := os.Stat(q.msgPath("1.x")); err != nil {
				t.Fatalf("entry kept without its message: %v", err)
			}
		}
	})
}
