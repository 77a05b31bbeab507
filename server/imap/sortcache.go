package imap

import (
	"bufio"
	"cmp"
	"context"
	"hash/fnv"
	"io"
	"math"
	"net/mail"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/textproto"

	"mailmig/mailstore"
)

// What SORT (DATE) and THREAD need of each message, kept per folder in
// memory so that sorting or threading a large folder again reads no
// file (dovecot keeps the same in its cache file). A message's header
// never changes under its UID, so entries stay valid for the folder's
// UIDVALIDITY. Kept compact (TestSortCacheMemory, TestSortThreadMemory):
// per message a UID (4 bytes) and a 32-byte sortKeys in two slices
// ordered by UID, its References hashes (8 bytes each) in one slice
// shared by the folder; no map, no pointer, no per-message allocation.

// threadInfo is one message's sort and thread keys as SORT and THREAD
// use them; refs points into the folder's shared slice.
type threadInfo struct {
	date  int64    // sent date (RFC 5256 §2.2), Unix seconds; the internal date without a usable Date
	msgID uint64   // hash of the Message-ID, 0 if none
	refs  []uint64 // hashes of References (or the first In-Reply-To id), oldest first
	subj  uint64   // hash of the base subject, 0 if empty
	reply bool     // the subject was a reply or forward (RFC 5256 §2.1)
}

// sortKeys is threadInfo as kept: refs as a range of folderSortCache.refs.
type sortKeys struct {
	date   int64
	msgID  uint64
	subj   uint64
	refOff uint32
	refN   uint16 // a header of maxSortHeader bytes has fewer ids
	reply  bool
}

// folderSortCache holds the sortKeys of one folder's messages.
type folderSortCache struct {
	mu          sync.Mutex
	uidValidity uint32
	uids        []uint32   // ascending
	keys        []sortKeys // keys[i] is of uids[i]
	// refs holds the References of all entries. It is only appended to
	// (a slice handed out stays valid) or replaced when rebuilt.
	refs    []uint64
	used    time.Time
	results []cachedResult // resultcache.go
}

// sortCaches are the caches of all folders, process-wide (keyed by the
// folder's directory), bounded by maxCachedMessages: the folders used
// least recently are dropped first.
var sortCaches = struct {
	sync.Mutex
	m map[string]*folderSortCache
}{m: map[string]*folderSortCache{}}

const maxCachedMessages = 2_000_000

// sortCacheFor returns f's cache, emptied if its UIDVALIDITY changed.
func sortCacheFor(f *mailstore.Folder, uidValidity uint32) *folderSortCache {
	sortCaches.Lock()
	defer sortCaches.Unlock()
	fc, ok := sortCaches.m[f.Dir()]
	if !ok {
		evictLeastUsed(sortCaches.m, maxCachedMessages,
			(*folderSortCache).len,
			func(o *folderSortCache) time.Time { return o.used })
		fc = &folderSortCache{}
		sortCaches.m[f.Dir()] = fc
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.used = time.Now()
	if fc.uidValidity != uidValidity {
		fc.uidValidity, fc.uids, fc.keys, fc.refs, fc.results = uidValidity, nil, nil, nil, nil
	}
	return fc
}

func (fc *folderSortCache) len() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.uids)
}

// info is the threadInfo of the entry at i.
func (fc *folderSortCache) info(i int) threadInfo {
	k := &fc.keys[i]
	ti := threadInfo{date: k.date, msgID: k.msgID, subj: k.subj, reply: k.reply}
	if k.refN > 0 {
		ti.refs = fc.refs[k.refOff : k.refOff+uint32(k.refN) : k.refOff+uint32(k.refN)]
	}
	return ti
}

// newEntry is a message read for the cache, not yet merged into it.
type newEntry struct {
	uid  uint32
	keys sortKeys
}

// lookup calls found(i, j) for each msgs[i] cached (at entry j) and
// returns the indexes of msgs not cached. msgs ascend by UID.
func (fc *folderSortCache) lookup(msgs []*mailstore.MessageInfo, found func(i, j int)) (missing []int) {
	j := 0
	var prev uint32
	for i, mi := range msgs {
		if mi.UID < prev {
			// Not ascending after all: search from the start.
			j, _ = slices.BinarySearch(fc.uids, mi.UID)
		}
		prev = mi.UID
		for j < len(fc.uids) && fc.uids[j] < mi.UID {
			j++
		}
		if j < len(fc.uids) && fc.uids[j] == mi.UID {
			found(i, j)
		} else {
			missing = append(missing, i)
		}
	}
	return missing
}

// fill reads the headers of msgs[missing] into the cache. An unreadable
// message gets empty keys and its internal date (it sorts; it is not
// dropped).
func (fc *folderSortCache) fill(ctx context.Context, f *mailstore.Folder, msgs []*mailstore.MessageInfo, missing []int) error {
	if len(missing) == 0 {
		return nil
	}
	// Usually the new messages come after the cached ones: appended in
	// place, the slices grown once to their size.
	var added []newEntry
	above := len(fc.uids) == 0 || msgs[missing[0]].UID > fc.uids[len(fc.uids)-1]
	if above {
		fc.uids = slices.Grow(fc.uids, len(missing))
		fc.keys = slices.Grow(fc.keys, len(missing))
	}
	last := uint32(0)
	for n, i := range missing {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				fc.merge(added) // what was read is kept
				return err
			}
		}
		mi := msgs[i]
		sh, _ := readSortHeaderOf(f, *mi)
		k := fc.keysOf(sh.threadInfo(mi.InternalDate))
		if above && mi.UID > last {
			fc.uids, fc.keys = append(fc.uids, mi.UID), append(fc.keys, k)
			last = mi.UID
			continue
		}
		added = append(added, newEntry{mi.UID, k})
	}
	fc.merge(added)
	return nil
}

// keysOf is ti as kept, its refs appended to fc.refs.
func (fc *folderSortCache) keysOf(ti threadInfo) sortKeys {
	k := sortKeys{date: ti.date, msgID: ti.msgID, subj: ti.subj, reply: ti.reply, refOff: uint32(len(fc.refs))}
	if len(ti.refs) > 0 {
		n := min(len(ti.refs), math.MaxUint16)
		fc.refs = append(fc.refs, ti.refs[:n]...)
		k.refN = uint16(n)
	}
	return k
}

// merge adds entries not in the cache yet.
func (fc *folderSortCache) merge(added []newEntry) {
	if len(added) == 0 {
		return
	}
	slices.SortFunc(added, func(a, b newEntry) int { return cmp.Compare(a.uid, b.uid) })
	// New UIDs above the cached ones just append.
	if len(fc.uids) == 0 || added[0].uid > fc.uids[len(fc.uids)-1] {
		for _, e := range added {
			fc.uids = append(fc.uids, e.uid)
			fc.keys = append(fc.keys, e.keys)
		}
		return
	}
	uids := make([]uint32, 0, len(fc.uids)+len(added))
	keys := make([]sortKeys, 0, len(fc.uids)+len(added))
	a := 0
	for j := range fc.uids {
		for a < len(added) && added[a].uid < fc.uids[j] {
			uids, keys = append(uids, added[a].uid), append(keys, added[a].keys)
			a++
		}
		uids, keys = append(uids, fc.uids[j]), append(keys, fc.keys[j])
	}
	for ; a < len(added); a++ {
		uids, keys = append(uids, added[a].uid), append(keys, added[a].keys)
	}
	fc.uids, fc.keys = uids, keys
}

// prune drops the entries of expunged messages when they outnumber the
// live ones (live ascending), rebuilding the slices to their size.
func (fc *folderSortCache) prune(live []*mailstore.MessageInfo, snapLen int) {
	if len(fc.uids) <= 2*snapLen+1000 {
		return
	}
	var uids []uint32
	var keys []sortKeys
	var refs []uint64
	fc.lookup(live, func(_, j int) {
		k := fc.keys[j]
		off := uint32(len(refs))
		refs = append(refs, fc.refs[k.refOff:k.refOff+uint32(k.refN)]...)
		k.refOff = off
		uids, keys = append(uids, fc.uids[j]), append(keys, k)
	})
	fc.uids, fc.keys, fc.refs = slices.Clip(uids), slices.Clip(keys), slices.Clip(refs)
}

// infos returns the threadInfo of msgs (ascending by UID), reading the
// headers of those not cached yet.
func (fc *folderSortCache) infos(ctx context.Context, f *mailstore.Folder, msgs []*mailstore.MessageInfo, snapLen int) ([]threadInfo, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if err := fc.fill(ctx, f, msgs, fc.lookup(msgs, func(int, int) {})); err != nil {
		return nil, err
	}
	out := make([]threadInfo, len(msgs))
	fc.lookup(msgs, func(i, j int) { out[i] = fc.info(j) })
	fc.prune(msgs, snapLen)
	return out, nil
}

// dates returns the sent dates of msgs (ascending by UID), as infos.
func (fc *folderSortCache) dates(ctx context.Context, f *mailstore.Folder, msgs []*mailstore.MessageInfo, snapLen int) ([]int64, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if err := fc.fill(ctx, f, msgs, fc.lookup(msgs, func(int, int) {})); err != nil {
		return nil, err
	}
	out := make([]int64, len(msgs))
	fc.lookup(msgs, func(i, j int) { out[i] = fc.keys[j].date })
	fc.prune(msgs, snapLen)
	return out, nil
}

// maxSortHeader bounds the header read for sort keys.
const maxSortHeader = 256 << 10

// readHeaderOf reads a message's header (not its body).
func readHeaderOf(f *mailstore.Folder, mi mailstore.MessageInfo) (textproto.Header, error) {
	fh, err := f.OpenMessage(mi)
	if err != nil {
		return textproto.Header{}, err
	}
	defer fh.Close()
	return textproto.ReadHeader(bufio.NewReader(io.LimitReader(fh, maxSortHeader)))
}

// threadInfo computes the keys from the fields.
func (sh sortHeader) threadInfo(internal time.Time) threadInfo {
	ti := threadInfo{date: sentDateOf(sh.date, internal).Unix()}
	if ids := msgIDs(sh.messageID); len(ids) > 0 {
		ti.msgID = hashID(ids[0])
	}
	refs := msgIDs(sh.references)
	if len(refs) == 0 {
		// RFC 5256 §2 REFERENCES (1)(A): without References, the
		// first message id of In-Reply-To.
		if irt := msgIDs(sh.inReplyTo); len(irt) > 0 {
			refs = irt[:1]
		}
	}
	if len(refs) > 0 {
		ti.refs = make([]uint64, len(refs))
		for i, r := range refs {
			ti.refs[i] = hashID(r)
		}
	}
	base, reply := baseSubject(sh.subject)
	if base != "" {
		ti.subj = hashID(base)
	}
	ti.reply = reply
	return ti
}

// sentDateOf is the Date field's value in UTC, or the internal date when
// there is none or it cannot be parsed (RFC 5256 §2.2).
func sentDateOf(v string, internal time.Time) time.Time {
	if v = strings.TrimSpace(v); v != "" {
		v = unfold(v)
		// The usual form first: mail.ParseDate tries a dozen layouts
		// before it, each failure allocating an error, which was most
		// of the garbage of filling the sort cache. Where this parses
		// the whole value, ParseDate gives the same instant (the only
		// '+' or '-' is the zone's, so it looks at the same string,
		// and of its layouts only one of this form can match);
		// FuzzSentDate compares the two.
		if t, err := time.Parse(usualDateLayout, v); err == nil {
			return t.UTC()
		}
		if t, err := mail.ParseDate(v); err == nil {
			return t.UTC()
		}
	}
	return internal.UTC()
}

// usualDateLayout is RFC 5322's date-time with day of week, seconds and
// a numeric zone, as nearly every Date field has it.
const usualDateLayout = "Mon, 2 Jan 2006 15:04:05 -0700"

// msgIDs returns the msg-ids ("<...>") of a field in order, without the
// angle brackets.
func msgIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return out
		}
		id := strings.TrimSpace(v[i+1 : i+j])
		if id != "" && strings.Contains(id, "@") {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
}

// hashID is the 64-bit FNV-1a hash used for ids and subjects (never 0).
func hashID(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// After a SORT or THREAD over a large folder the heap holds tens of
// megabytes of freed objects (the command's hits, thread nodes, header
// reading) that the Go runtime would hand back to the system only
// slowly, keeping the process's RSS up by several hundred bytes a message
// of the folder. releaseLargeSort returns them (a full GC and scavenge,
// debug.FreeOSMemory) after a command that handled at least
// releaseMinMessages messages: before the answer when the command read
// that many headers into the cache (it took seconds; the GC adds a few
// per cent), otherwise in the background once releaseIdle has passed
// without another such command (a GC of a heap holding a 100,000-message
// selection takes 100-200 ms here, so not during a burst of them).
// scripts/bench-imap measures the RSS with it.

const (
	releaseMinMessages = 20000
	releaseIdle        = time.Second
)

var lastRelease struct {
	sync.Mutex
	timer *time.Timer
}

// releaseLargeSort is called after a SORT or THREAD that handled n
// messages (not for a kept answer) and read filled headers.
func releaseLargeSort(n, filled int) {
	if n < releaseMinMessages {
		return
	}
	if filled >= releaseMinMessages {
		debug.FreeOSMemory()
		return
	}
	lastRelease.Lock()
	defer lastRelease.Unlock()
	if lastRelease.timer == nil {
		lastRelease.timer = time.AfterFunc(releaseIdle, debug.FreeOSMemory)
		return
	}
	lastRelease.timer.Reset(releaseIdle)
}
