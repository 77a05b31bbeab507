package imap

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"mailmig/mailstore"
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

// TestFolderSortCacheEntries: entries added out of order are merged by
// UID with their References intact, lookup finds them whatever the order
// asked in, and pruning the expunged rebuilds the shared References.
func TestFolderSortCacheEntries(t *testing.T) {
	fc := &folderSortCache{}
	ti := func(uid uint32) threadInfo {
		x := threadInfo{date: int64(uid) * 10, msgID: uint64(uid), subj: uint64(uid) + 100, reply: uid%2 == 0}
		for r := uint32(1); r < uid%4; r++ {
			x.refs = append(x.refs, uint64(uid*1000+r))
		}
		return x
	}
	add := func(uids ...uint32) {
		var es []newEntry
		for _, u := range uids {
			es = append(es, newEntry{u, fc.keysOf(ti(u))})
		}
		fc.merge(es)
	}
	add(5, 1, 9)
	add(3, 7)
	add(2000, 11)
	if want := []uint32{1, 3, 5, 7, 9, 11, 2000}; !slices.Equal(fc.uids, want) {
		t.Fatalf("uids %v, want %v", fc.uids, want)
	}
	check := func() {
		t.Helper()
		for j, u := range fc.uids {
			got, want := fc.info(j), ti(u)
			if got.date != want.date || got.msgID != want.msgID || got.subj != want.subj || got.reply != want.reply || !slices.Equal(got.refs, want.refs) {
				t.Errorf("uid %d: %+v, want %+v", u, got, want)
			}
		}
	}
	check()
	var msgs []*mailstore.MessageInfo
	for _, u := range []uint32{9, 3, 4, 2000} {
		msgs = append(msgs, &mailstore.MessageInfo{UID: u})
	}
	var found []uint32
	missing := fc.lookup(msgs, func(i, j int) {
		if fc.uids[j] != msgs[i].UID {
			t.Errorf("lookup of %d found %d", msgs[i].UID, fc.uids[j])
		}
		found = append(found, msgs[i].UID)
	})
	if !slices.Equal(found, []uint32{9, 3, 2000}) || !slices.Equal(missing, []int{2}) {
		t.Errorf("lookup: found %v, missing %v", found, missing)
	}
	// Over 2*live+1000 entries: the expunged go.
	for u := uint32(3000); u < 4100; u++ {
		add(u)
	}
	fc.prune([]*mailstore.MessageInfo{{UID: 3}, {UID: 7}, {UID: 4000}}, 3)
	if want := []uint32{3, 7, 4000}; !slices.Equal(fc.uids, want) {
		t.Fatalf("after prune: %v, want %v", fc.uids, want)
	}
	if len(fc.refs) != len(ti(3).refs)+len(ti(7).refs)+len(ti(4000).refs) {
		t.Errorf("after prune %d references kept", len(fc.refs))
	}
	check()
}
