package imap

import (
	"bufio"
	"context"
	"hash/fnv"
	"io"
	"net/mail"
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
// UIDVALIDITY. About 100 bytes a message (map entry and references);
// scripts/bench-imap measures it.

// threadInfo is one message's sort and thread keys.
type threadInfo struct {
	date  int64    // sent date (RFC 5256 §2.2), Unix seconds; the internal date without a usable Date
	msgID uint64   // hash of the Message-ID, 0 if none
	refs  []uint64 // hashes of References (or the first In-Reply-To id), oldest first
	subj  uint64   // hash of the base subject, 0 if empty
	reply bool     // the subject was a reply or forward (RFC 5256 §2.1)
}

// folderSortCache holds the threadInfo of one folder's messages.
type folderSortCache struct {
	mu          sync.Mutex
	uidValidity uint32
	info        map[uint32]threadInfo
	used        time.Time
	results     []cachedResult // resultcache.go
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
		total := 0
		for _, o := range sortCaches.m {
			total += len(o.info)
		}
		for total > maxCachedMessages {
			var oldest string
			var t time.Time
			for d, o := range sortCaches.m {
				if oldest == "" || o.used.Before(t) {
					oldest, t = d, o.used
				}
			}
			total -= len(sortCaches.m[oldest].info)
			delete(sortCaches.m, oldest)
		}
		fc = &folderSortCache{info: map[uint32]threadInfo{}}
		sortCaches.m[f.Dir()] = fc
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.used = time.Now()
	if fc.uidValidity != uidValidity {
		fc.uidValidity, fc.info, fc.results = uidValidity, map[uint32]threadInfo{}, nil
	}
	return fc
}

// infos returns the threadInfo of msgs, reading the headers of those not
// cached yet. An unreadable message gets empty keys and its internal
// date (it sorts; it is not dropped).
func (fc *folderSortCache) infos(ctx context.Context, f *mailstore.Folder, msgs []*mailstore.MessageInfo, snapLen int) ([]threadInfo, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	out := make([]threadInfo, len(msgs))
	for i, mi := range msgs {
		ti, ok := fc.info[mi.UID]
		if !ok {
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			h, _ := readHeaderOf(f, *mi)
			ti = threadInfoOf(h, mi.InternalDate)
			fc.info[mi.UID] = ti
		}
		out[i] = ti
	}
	// Expunged messages' entries go when they outnumber the live ones.
	if len(fc.info) > 2*snapLen+1000 {
		live := make(map[uint32]bool, len(msgs))
		for _, mi := range msgs {
			live[mi.UID] = true
		}
		for u := range fc.info {
			if !live[u] {
				delete(fc.info, u)
			}
		}
	}
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

// threadInfoOf computes the keys from a header.
func threadInfoOf(h textproto.Header, internal time.Time) threadInfo {
	ti := threadInfo{date: sentDate(h, internal).Unix()}
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		ti.msgID = hashID(ids[0])
	}
	refs := msgIDs(h.Get("References"))
	if len(refs) == 0 {
		// RFC 5256 §2 REFERENCES (1)(A): without References, the
		// first message id of In-Reply-To.
		if irt := msgIDs(h.Get("In-Reply-To")); len(irt) > 0 {
			refs = irt[:1]
		}
	}
	if len(refs) > 0 {
		ti.refs = make([]uint64, len(refs))
		for i, r := range refs {
			ti.refs[i] = hashID(r)
		}
	}
	base, reply := baseSubject(h.Get("Subject"))
	if base != "" {
		ti.subj = hashID(base)
	}
	ti.reply = reply
	return ti
}

// sentDate is the Date field in UTC, or the internal date when there is
// none or it cannot be parsed (RFC 5256 §2.2).
func sentDate(h textproto.Header, internal time.Time) time.Time {
	if v := strings.TrimSpace(h.Get("Date")); v != "" {
		if t, err := mail.ParseDate(unfold(v)); err == nil {
			return t.UTC()
		}
	}
	return internal.UTC()
}

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
