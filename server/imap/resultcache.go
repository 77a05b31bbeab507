package imap

import (
	"hash/fnv"
	"strings"

	"mailmig/mailstore"
)

// The answers of SORT and THREAD on a large folder are kept for the
// folder's current snapshot, so asking again while nothing changed (a
// client re-sorting, several sessions of one user) costs the writing
// only, as dovecot's index makes a warm SORT or THREAD cheap. An answer is
// reused only for the same command text, the same snapshot (any change to
// the folder, flags included, makes a new one) and the same view of the
// session (its UIDs by sequence number, hashed), and only when the search
// program depends on nothing else: not on \Recent, the session's saved
// result ($), the clock (OLDER, YOUNGER) or mod-sequences.

// minCachedResult is the smallest folder whose answers are kept.
var minCachedResult = 5000 // a variable for the tests

// maxCachedResults is how many answers a folder keeps.
const maxCachedResults = 4

type resultKey struct {
	snap *mailstore.Snapshot
	view uint64
	cmd  string
}

type cachedResult struct {
	key resultKey
	out string
}

// sessionIndependent tells whether k's matches depend only on the folder's
// snapshot and the view.
func (k *searchKey) sessionIndependent() bool {
	switch k.op {
	case "RECENT", "NEW", "OLD", "OLDER", "YOUNGER", "MODSEQ":
		return false
	case "SEQ", "UID":
		if isSearchRes(k.set) {
			return false
		}
	}
	for i := range k.sub {
		if !k.sub[i].sessionIndependent() {
			return false
		}
	}
	return true
}

// resultKeyFor returns the cache key of a command, or ok false when its
// answer must be computed.
func (c *conn) resultKeyFor(snap *mailstore.Snapshot, prog *searchKey, cmd string) (resultKey, bool) {
	s := c.sel
	if len(s.uids) < minCachedResult || !prog.sessionIndependent() {
		return resultKey{}, false
	}
	h := fnv.New64a()
	var b [4]byte
	for _, u := range s.uids {
		b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		h.Write(b[:])
	}
	return resultKey{snap: snap, view: h.Sum64(), cmd: strings.ToUpper(cmd)}, true
}

// cachedAnswer returns a kept answer.
func (fc *folderSortCache) cachedAnswer(k resultKey) (string, bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, r := range fc.results {
		if r.key == k {
			return r.out, true
		}
	}
	return "", false
}

// keepAnswer keeps an answer, dropping those of older snapshots and the
// oldest beyond maxCachedResults.
func (fc *folderSortCache) keepAnswer(k resultKey, out string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	kept := fc.results[:0]
	for _, r := range fc.results {
		if r.key.snap == k.snap {
			kept = append(kept, r)
		}
	}
	if len(kept) >= maxCachedResults {
		kept = kept[1:]
	}
	fc.results = append(kept, cachedResult{key: k, out: out})
}
