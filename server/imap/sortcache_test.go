package imap

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
)

// TestSortCacheMemory: the SORT/THREAD cache of a 100,000-message folder
// of mailing-list threads (the headers scripts/imapload populate-threads
// writes: References chains of up to 10 ids) stays under 200 bytes a
// message (issue 11's target).
func TestSortCacheMemory(t *testing.T) {
	const n = 100_000
	rng := rand.New(rand.NewPCG(1, 2))
	refs := make([][]int, n+1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fc := &folderSortCache{}
	for i := 1; i <= n; i++ {
		var h textproto.Header
		h.Set("Message-Id", fmt.Sprintf("<%d.thread@example.net>", i))
		subj := fmt.Sprintf("topic %d", i)
		if i > 1 && rng.IntN(10) < 7 {
			p := i - 1 - rng.IntN(min(i-1, 200))
			refs[i] = append(append([]int{}, refs[p]...), p)
			if len(refs[i]) > 10 {
				refs[i] = refs[i][len(refs[i])-10:]
			}
			var rs []string
			for _, r := range refs[i] {
				rs = append(rs, fmt.Sprintf("<%d.thread@example.net>", r))
			}
			h.Set("References", strings.Join(rs, " "))
			subj = "Re: " + subj
		}
		h.Set("Subject", subj)
		h.Set("Date", "Wed, 07 Oct 2009 12:00:00 +0200")
		sh := sortHeader{date: h.Get("Date"), messageID: h.Get("Message-Id"), references: h.Get("References"), subject: subj}
		fc.merge([]newEntry{{uint32(i), fc.keysOf(sh.threadInfo(time.Time{}))}})
	}
	refs = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Signed: memory other tests' servers free meanwhile must not wrap.
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("sort/thread cache: %.0f bytes a message (%d entries)", per, len(fc.uids))
	if per > 200 {
		t.Errorf("%.0f bytes a message, want at most 200", per)
	}
	runtime.KeepAlive(fc)
}
