package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailmig/mailstore"
)

// CONDSTORE (RFC 7162) mod-sequences.
//
// Maildir has no place for a modseq per message, so mailmig keeps them per
// folder in a tracker derived from the folder's snapshots: every time the
// folder's snapshot changes, the messages that are new or whose flags
// differ get the next modseq, and HIGHESTMODSEQ moves with them (an
// expunge moves it too, RFC 7162 §3.1.4 via §3.2.10). All values come
// from one process-wide counter that starts at the microseconds of the
// server's start and is raised above anything read back from disk, so
// they only ever grow, across folders and across restarts.
//
// The tracker is persisted in the folder's directory, in modseqFileName,
// so that a restart does not turn into "every flag may have changed" for
// every client (a full flag resync of every folder for Thunderbird and
// mbsync): the file holds, per message, its modseq and a hash of its
// flags. When a tracker starts it reads the file and reconciles it with
// the folder as it is now: messages whose flags hash still matches keep
// their modseq; messages that are new or changed while no tracker watched
// (another process, a restart) get a new one, and messages that vanished
// move HIGHESTMODSEQ. A missing, unreadable or foreign file only costs
// that resync, never a missed change.
//
// File format (text, one record a line):
//
//	mailmig-modseq 1 UIDVALIDITY HIGHESTMODSEQ     header
//	UID MODSEQ FLAGSHASH                           a message (hash: hex FNV-64a)
//	-UID                                           an expunged message
//	H MODSEQ                                       HIGHESTMODSEQ moved
//
// Later lines override earlier ones: changes are appended as a journal,
// and the file is rewritten (tmp + rename) when the journal outgrows the
// folder. A torn last line (crash during append) is ignored.
//
// Snapshots are taken through the tracker (folderModseq.snapshot), under
// its mutex, so they are observed in the order the store produced them and
// a message's modseq is assigned before any session reports its flags.
//
// A session may still FETCH a message that another session expunged (it
// has not been told yet, RFC 3501 §7.4.1). Its modseq stays what it was
// (kept in gone), never the folder's base: MODSEQ must not go backwards.

// modseqFileName is the tracker's file in a folder's directory.
const modseqFileName = "mailmig-modseq"

// maxGone bounds the modseqs kept for expunged messages per folder.
const maxGone = 100000

// modseqs is the server's registry of per-folder trackers.
type modseqs struct {
	counter atomic.Uint64
	log     *slog.Logger
	mu      sync.Mutex
	m       map[string]*folderModseq // by folder directory
}

func (ms *modseqs) init(log *slog.Logger) {
	ms.counter.Store(uint64(time.Now().UnixMicro()))
	ms.log = log
	ms.m = map[string]*folderModseq{}
}

// raise makes the counter at least v.
func (ms *modseqs) raise(v uint64) {
	for {
		c := ms.counter.Load()
		if c >= v || ms.counter.CompareAndSwap(c, v) {
			return
		}
	}
}

// folderModseq tracks the mod-sequences of one folder.
type folderModseq struct {
	ms      *modseqs
	dir     string
	mu      sync.Mutex
	last    *mailstore.Snapshot
	base    uint64            // modseq of messages not in changed
	highest uint64            // HIGHESTMODSEQ
	changed map[uint32]uint64 // modseq of messages not at base
	gone    map[uint32]uint64 // modseq of expunged messages
	// expungedAt is the modseq at which each message in gone was
	// expunged; vanishedFloor the modseq from which that history is
	// complete (RFC 7162 §3.2.5.1: VANISHED (EARLIER) need name only
	// the UIDs expunged since the client's modseq).
	expungedAt    map[uint32]uint64
	vanishedFloor uint64
	// goneFlags are the last flags of expunged messages (those of their
	// modseq in gone; modseq_state.go).
	goneFlags map[uint32][]string
	used      time.Time
	journal   int  // records appended since the file was last written whole
	warned    bool // a write failure was logged
}

// trackerLinger is how long a tracker nobody asked for is kept.
const trackerLinger = 10 * time.Minute

// tracker returns the tracker of f.
func (ms *modseqs) tracker(f *mailstore.Folder) *folderModseq {
	now := time.Now()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	t, ok := ms.m[f.Dir()]
	if !ok {
		if len(ms.m) > 1000 {
			for dir, o := range ms.m {
				o.mu.Lock()
				old := now.Sub(o.used) > trackerLinger
				o.mu.Unlock()
				if old {
					delete(ms.m, dir)
				}
			}
		}
		t = &folderModseq{ms: ms, dir: f.Dir(), changed: map[uint32]uint64{}, gone: map[uint32]uint64{}, goneFlags: map[uint32][]string{}, expungedAt: map[uint32]uint64{}}
		ms.m[f.Dir()] = t
	}
	t.mu.Lock()
	t.used = now
	t.mu.Unlock()
	return t
}

// snapshot takes f's snapshot and assigns modseqs to what changed since
// the last one.
func (t *folderModseq) snapshot(ctx context.Context, f *mailstore.Folder) (*mailstore.Snapshot, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.used = time.Now()
	snap, err := f.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if t.last == nil {
		t.load(snap)
	} else {
		t.observe(snap)
	}
	return snap, nil
}

// flagsHash is the hash of a message's flags kept in the file.
func flagsHash(flags []string) uint64 {
	h := fnv.New64a()
	for _, f := range flags {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// modseqEntry is a message's record in the file.
type modseqEntry struct {
	modseq uint64
	hash   uint64
}

// modseqFile is the content of a tracker's file.
type modseqFile struct {
	uidValidity uint32
	highest     uint64
	entries     map[uint32]modseqEntry
	records     int // lines read, header excluded
}

// parseModseqFile reads a tracker's file. A torn or garbled line ends the
// file there (what follows is a journal of later changes, which are
// reconciled from the folder instead).
func parseModseqFile(data []byte) (*modseqFile, error) {
	line, rest, _ := bytes.Cut(data, []byte("\n"))
	hdr := strings.Fields(string(line))
	if len(hdr) != 4 || hdr[0] != "mailmig-modseq" || hdr[1] != "1" {
		return nil, errors.New("not a mailmig-modseq 1 file")
	}
	uv, err1 := strconv.ParseUint(hdr[2], 10, 32)
	hi, err2 := strconv.ParseUint(hdr[3], 10, 63)
	if err1 != nil || err2 != nil || uv == 0 {
		return nil, errors.New("bad mailmig-modseq header")
	}
	mf := &modseqFile{uidValidity: uint32(uv), highest: hi, entries: map[uint32]modseqEntry{}}
	for len(rest) > 0 {
		var l []byte
		var ok bool
		l, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			break // torn last line
		}
		f := strings.Fields(string(l))
		switch {
		case len(f) == 2 && f[0] == "H":
			v, err := strconv.ParseUint(f[1], 10, 63)
			if err != nil {
				return mf, nil
			}
			mf.highest = max(mf.highest, v)
		case len(f) == 1 && strings.HasPrefix(f[0], "-"):
			uid, err := strconv.ParseUint(f[0][1:], 10, 32)
			if err != nil {
				return mf, nil
			}
			delete(mf.entries, uint32(uid))
		case len(f) == 3:
			uid, err1 := strconv.ParseUint(f[0], 10, 32)
			v, err2 := strconv.ParseUint(f[1], 10, 63)
			h, err3 := strconv.ParseUint(f[2], 16, 64)
			if err1 != nil || err2 != nil || err3 != nil || uid == 0 {
				return mf, nil
			}
			mf.entries[uint32(uid)] = modseqEntry{v, h}
			mf.highest = max(mf.highest, v)
		default:
			return mf, nil
		}
		mf.records++
	}
	return mf, nil
}

// load starts the tracker from the folder's file and snap; t.mu is held.
func (t *folderModseq) load(snap *mailstore.Snapshot) {
	t.last = snap
	var mf *modseqFile
	data, err := os.ReadFile(filepath.Join(t.dir, modseqFileName))
	switch {
	case err == nil:
		mf, err = parseModseqFile(data)
		if err != nil {
			t.ms.log.Warn("imap: ignoring modseq file", "folder", t.dir, "err", err)
		} else if mf.uidValidity != snap.UIDValidity {
			mf = nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		t.ms.log.Warn("imap: reading modseq file", "folder", t.dir, "err", err)
	}
	if mf == nil {
		v := t.ms.counter.Add(1)
		t.base, t.highest = v, v
		t.vanishedFloor = v
		t.rewrite(snap)
		return
	}
	t.ms.raise(mf.highest)
	// The base is the most common modseq still valid, so that a folder
	// mostly untouched since its tracker began needs no map entries.
	count := map[uint64]int{}
	for _, m := range snap.Messages {
		if e, ok := mf.entries[m.UID]; ok && e.hash == flagsHash(m.Flags) {
			count[e.modseq]++
		}
	}
	var v uint64
	next := func() uint64 {
		if v == 0 {
			v = t.ms.counter.Add(1)
		}
		return v
	}
	best := 0
	for m, n := range count {
		if n > best || (n == best && m < t.base) {
			t.base, best = m, n
		}
	}
	if best == 0 {
		t.base = next()
	}
	t.highest = mf.highest
	for _, m := range snap.Messages {
		e, ok := mf.entries[m.UID]
		switch {
		case !ok || e.hash != flagsHash(m.Flags):
			t.changed[m.UID] = next()
		case e.modseq != t.base:
			t.changed[m.UID] = e.modseq
		}
	}
	for uid := range mf.entries {
		if _, ok := snap.Lookup(uid); !ok {
			next() // expunged while nobody watched
			break
		}
	}
	if v != 0 {
		t.highest = max(t.highest, v)
	}
	t.highest = max(t.highest, t.base)
	t.vanishedFloor = t.highest
	t.rewrite(snap)
}

// observe diffs the last snapshot with snap; t.mu is held.
func (t *folderModseq) observe(snap *mailstore.Snapshot) {
	old := t.last
	if snap == old {
		return
	}
	t.last = snap
	var v uint64
	next := func() uint64 {
		if v == 0 {
			v = t.ms.counter.Add(1)
			t.highest = v
		}
		return v
	}
	if old.UIDValidity != snap.UIDValidity {
		clear(t.changed)
		clear(t.gone)
		clear(t.goneFlags)
		clear(t.expungedAt)
		t.base = next()
		t.vanishedFloor = t.base
		t.rewrite(snap)
		return
	}
	var rec []string
	i, j := 0, 0
	for i < len(old.Messages) || j < len(snap.Messages) {
		switch {
		case j == len(snap.Messages) || (i < len(old.Messages) && old.Messages[i].UID < snap.Messages[j].UID):
			uid := old.Messages[i].UID
			if len(t.gone) >= maxGone {
				clear(t.gone)
				clear(t.goneFlags)
				clear(t.expungedAt)
				t.vanishedFloor = t.highest
			}
			t.gone[uid] = t.modseqLocked(uid)
			t.goneFlags[uid] = old.Messages[i].Flags
			delete(t.changed, uid)
			t.expungedAt[uid] = next()
			rec = append(rec, "-"+strconv.FormatUint(uint64(uid), 10))
			i++
		case i == len(old.Messages) || old.Messages[i].UID > snap.Messages[j].UID:
			m := snap.Messages[j]
			t.changed[m.UID] = next()
			rec = append(rec, entryLine(m, v))
			j++
		default:
			if m := snap.Messages[j]; !slices.Equal(old.Messages[i].Flags, m.Flags) {
				t.changed[m.UID] = next()
				rec = append(rec, entryLine(m, v))
			}
			i++
			j++
		}
	}
	if len(rec) == 0 {
		return
	}
	rec = append(rec, "H "+strconv.FormatUint(t.highest, 10))
	t.journal += len(rec)
	if t.journal > 2*len(snap.Messages)+1000 {
		t.rewrite(snap)
		return
	}
	t.appendRecords(rec)
}

func entryLine(m mailstore.MessageInfo, modseq uint64) string {
	return fmt.Sprintf("%d %d %x", m.UID, modseq, flagsHash(m.Flags))
}

// rewrite writes the whole file from snap; t.mu is held.
func (t *folderModseq) rewrite(snap *mailstore.Snapshot) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "mailmig-modseq 1 %d %d\n", snap.UIDValidity, t.highest)
	for _, m := range snap.Messages {
		b.WriteString(entryLine(m, t.modseqLocked(m.UID)))
		b.WriteByte('\n')
	}
	path := filepath.Join(t.dir, modseqFileName)
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, b.Bytes(), 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		t.writeFailed(err)
		return
	}
	t.journal = 0
}

// appendRecords appends journal lines; t.mu is held.
func (t *folderModseq) appendRecords(rec []string) {
	f, err := os.OpenFile(filepath.Join(t.dir, modseqFileName), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.writeFailed(err)
		return
	}
	w := bufio.NewWriter(f)
	for _, r := range rec {
		w.WriteString(r)
		w.WriteByte('\n')
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.writeFailed(err)
	}
}

// writeFailed logs the first failure to keep the file: modseqs stay right
// while the server runs; a restart then costs clients a flag resync.
func (t *folderModseq) writeFailed(err error) {
	if !t.warned {
		t.warned = true
		t.ms.log.Warn("imap: cannot keep modseqs across restarts", "folder", t.dir, "err", err)
	}
}

// modseq returns the modseq of uid.
func (t *folderModseq) modseq(uid uint32) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.modseqLocked(uid)
}

func (t *folderModseq) modseqLocked(uid uint32) uint64 {
	if v, ok := t.changed[uid]; ok {
		return v
	}
	if v, ok := t.gone[uid]; ok {
		return v
	}
	return t.base
}

// vanishedSince returns the UIDs expunged after modseq since, ascending,
// and ok; or ok false when the tracker's history does not reach back to
// since (the caller then names every UID it cannot find, which RFC 7162
// §3.2.5.1 allows).
func (t *folderModseq) vanishedSince(since uint64) (uids []uint32, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if since < t.vanishedFloor {
		return nil, false
	}
	for u, at := range t.expungedAt {
		if at > since {
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	return uids, true
}

// highestModSeq returns HIGHESTMODSEQ.
func (t *folderModseq) highestModSeq() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.highest
}

// noteModseqs has the tracker of f observe what this command added to it,
// once CONDSTORE is on for the session: the new messages get their own
// mod-sequence, above everything before (RFC 7162 §3.1: each APPEND,
// COPY or MOVE is a change), instead of sharing one with whatever else
// the tracker finds when the folder is next looked at (as dovecot, which
// tracks modseqs once a client enabled CONDSTORE).
func (c *conn) noteModseqs(f *mailstore.Folder) {
	if !c.condstore {
		return
	}
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.srv.modseq.tracker(f).snapshot(ctx, f); err != nil {
		c.log.Warn("imap: modseqs of new messages", "user", c.user, "folder", f.Dir(), "err", err)
	}
}
