package imap

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"mailmig/mailstore"
)

// CONDSTORE (RFC 7162) mod-sequences.
//
// Maildir has no place for a modseq per message, so mailmig keeps them in
// memory, per folder, derived from the folder's snapshots: every time the
// folder's snapshot changes, the messages that are new or whose flags
// differ get the next modseq, and HIGHESTMODSEQ moves with them. All values
// come from one process-wide counter that starts at the microseconds of
// the server's start, so they only ever grow, across folders and across
// restarts: after a restart (or when a folder was not watched for a
// while) every message of a folder starts at the folder's new base, which
// is higher than anything handed out before — to a client that is "all
// flags may have changed", a full flag resync, never a missed change.
//
// Snapshots are taken through the tracker (folderModseq.snapshot), under
// its mutex, so they are observed in the order the store produced them and
// a message's modseq is assigned before any session reports its flags.

// modseqs is the server's registry of per-folder trackers.
type modseqs struct {
	counter atomic.Uint64
	mu      sync.Mutex
	m       map[string]*folderModseq // by folder directory
}

func (ms *modseqs) init() {
	ms.counter.Store(uint64(time.Now().UnixMicro()))
	ms.m = map[string]*folderModseq{}
}

// folderModseq tracks the mod-sequences of one folder.
type folderModseq struct {
	ms      *modseqs
	mu      sync.Mutex
	last    *mailstore.Snapshot
	base    uint64            // modseq of messages unchanged since the tracker began
	highest uint64            // HIGHESTMODSEQ
	changed map[uint32]uint64 // modseq of messages changed since
	used    time.Time
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
		v := ms.counter.Add(1)
		t = &folderModseq{ms: ms, base: v, highest: v, changed: map[uint32]uint64{}}
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
	t.observe(snap)
	return snap, nil
}

// observe diffs the last snapshot with snap; t.mu is held.
func (t *folderModseq) observe(snap *mailstore.Snapshot) {
	old := t.last
	if snap == old {
		return
	}
	t.last = snap
	if old == nil {
		return
	}
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
		t.base = next()
		return
	}
	i, j := 0, 0
	for i < len(old.Messages) || j < len(snap.Messages) {
		switch {
		case j == len(snap.Messages) || (i < len(old.Messages) && old.Messages[i].UID < snap.Messages[j].UID):
			// Expunged: HIGHESTMODSEQ moves (RFC 7162 §3.1.4).
			next()
			delete(t.changed, old.Messages[i].UID)
			i++
		case i == len(old.Messages) || old.Messages[i].UID > snap.Messages[j].UID:
			t.changed[snap.Messages[j].UID] = next()
			j++
		default:
			if !slices.Equal(old.Messages[i].Flags, snap.Messages[j].Flags) {
				t.changed[snap.Messages[j].UID] = next()
			}
			i++
			j++
		}
	}
}

// modseq returns the modseq of uid.
func (t *folderModseq) modseq(uid uint32) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.changed[uid]; ok {
		return v
	}
	return t.base
}

// highestModSeq returns HIGHESTMODSEQ.
func (t *folderModseq) highestModSeq() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.highest
}
