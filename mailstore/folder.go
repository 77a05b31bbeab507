package mailstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"
)

// IMAP system flags as stored in MessageInfo.Flags.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// MessageInfo describes one message of a snapshot.
type MessageInfo struct {
	UID uint32
	// Key is the file name's base (up to ':'), stable across flag changes.
	Key string
	// Flags are IMAP system flags (FlagSeen, ...) then keywords by name,
	// each group sorted.
	Flags []string
	// InternalDate is the file's mtime.
	InternalDate time.Time
	// Size is the physical size (S= from the name, else the file size).
	Size int64
	// VSize is the size with CRLF line ends (W= from the name, or -1 when
	// unknown).
	VSize int64
	// Path is the file's full path when the snapshot was taken.
	Path string
	// Recent is true while the file is still in new/.
	Recent bool
}

// HasFlag reports whether m carries flag (case-insensitive).
func (m MessageInfo) HasFlag(flag string) bool { return hasFlag(m.Flags, flag) }

// Snapshot is an immutable view of a folder. Messages are sorted by UID.
// Callers must not modify it; an unchanged folder returns the same
// *Snapshot.
type Snapshot struct {
	UIDValidity uint32
	UIDNext     uint32
	Messages    []MessageInfo
	// Keywords are the folder's keyword names, index = letter-'a' (""
	// for unused letters).
	Keywords []string
}

// Index returns the position of uid in Messages (the IMAP sequence number
// minus one), or -1.
func (s *Snapshot) Index(uid uint32) int {
	i := sort.Search(len(s.Messages), func(i int) bool { return s.Messages[i].UID >= uid })
	if i < len(s.Messages) && s.Messages[i].UID == uid {
		return i
	}
	return -1
}

// Lookup returns the message with uid.
func (s *Snapshot) Lookup(uid uint32) (MessageInfo, bool) {
	if i := s.Index(uid); i >= 0 {
		return s.Messages[i], true
	}
	return MessageInfo{}, false
}

// FlagOp says how StoreFlags combines flags with a message's flags.
type FlagOp int

// Flag operations of StoreFlags (IMAP STORE +FLAGS, -FLAGS, FLAGS).
const (
	FlagAdd FlagOp = iota
	FlagRemove
	FlagReplace
)

// UIDPair maps a source UID to the UID of its copy.
type UIDPair struct{ Src, Dst uint32 }

// Folder is one mailbox of a Store, a handle on state shared by every
// Store of the process (through the Hub). It is safe for concurrent use.
type Folder struct {
	store *Store
	name  string
	dir   string // absolute
	st    *folderState
}

// Name returns the folder's IMAP name.
func (f *Folder) Name() string { return f.name }

// Dir returns the folder's absolute directory.
func (f *Folder) Dir() string { return f.dir }

// Store returns the store the folder belongs to.
func (f *Folder) Store() *Store { return f.store }

// UIDValidity returns the UIDVALIDITY as of the last sync (Store.Folder
// syncs; Snapshot and Refresh sync again).
func (f *Folder) UIDValidity() uint32 {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if f.st.snap == nil {
		return 0
	}
	return f.st.snap.UIDValidity
}

// UIDNext returns the next UID as of the last sync.
func (f *Folder) UIDNext() uint32 {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if f.st.snap == nil {
		return 0
	}
	return f.st.snap.UIDNext
}

// Snapshot returns the folder's current state, syncing with the disk
// first: files without a uidlist entry (e.g. delivered by another program)
// get the next UIDs, and differences to the last snapshot are published
// on the Hub. An unchanged folder returns the cached snapshot after four
// stat calls. Files in new/ stay there (see ClaimRecent).
func (f *Folder) Snapshot(ctx context.Context) (*Snapshot, error) {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	snap, _, err := f.syncLocked(ctx, nil)
	return snap, err
}

// Refresh syncs with the disk like Snapshot and returns the changes it
// found and published (changes made by other processes, or by this one
// not yet seen). Meant to be polled, e.g. every 500 ms during IDLE.
func (f *Folder) Refresh(ctx context.Context) ([]Change, error) {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	_, ch, err := f.syncLocked(ctx, nil)
	return ch, err
}

// ClaimRecent moves the files of new/ to cur/ (dovecot's "recent"
// semantics: the session that sees them first reports them \Recent) and
// returns their UIDs, ascending, with those of messages this process put
// in cur/ as recent (recentCur). UIDs and flags are unchanged.
func (f *Folder) ClaimRecent(ctx context.Context) ([]uint32, error) {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	snap, _, err := f.syncLocked(ctx, nil)
	if err != nil {
		return nil, err
	}
	var uids []uint32
	for _, m := range snap.Messages {
		if !m.Recent {
			continue
		}
		if _, ok := f.st.recentCur[m.Key]; ok {
			// Already in cur/ (appended with flags): claimed here.
			delete(f.st.recentCur, m.Key)
			f.st.touch(m.Key)
			f.st.pending = true
			uids = append(uids, m.UID)
			continue
		}
		info := infoPart(nameOf(m.Path))
		newName := m.Key + ":2," + info
		dst := f.dir + "/cur/" + newName
		key := m.Key
		err := f.st.own([]string{"new", "cur"}, func() error { return os.Rename(m.Path, dst) }, func() {
			e := f.st.newFiles[key]
			delete(f.st.newFiles, key)
			e.name = newName
			f.st.curFiles[key] = e
			f.st.touch(key)
		})
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // someone else claimed or expunged it
			}
			return nil, fmt.Errorf("claim %s: %w", m.Path, err)
		}
		uids = append(uids, m.UID)
	}
	// Marks of messages gone before anyone claimed them.
	for key := range f.st.recentCur {
		if !f.st.onDisk(key) {
			delete(f.st.recentCur, key)
		}
	}
	if len(uids) > 0 {
		if _, _, err := f.syncLocked(ctx, nil); err != nil {
			return nil, err
		}
	}
	return uids, nil
}

func nameOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}

// Open opens the message with uid for reading. If another process renamed
// the file meanwhile, the folder is re-synced and the open retried.
func (f *Folder) Open(uid uint32) (*os.File, error) {
	ctx := context.Background()
	for attempt := 0; attempt < 3; attempt++ {
		f.st.mu.Lock()
		if attempt > 0 {
			f.st.force()
		}
		snap, _, err := f.syncLocked(ctx, nil)
		f.st.mu.Unlock()
		if err != nil {
			return nil, err
		}
		m, ok := snap.Lookup(uid)
		if !ok {
			return nil, fmt.Errorf("folder %s uid %d: %w", f.name, uid, ErrNoSuchMessage)
		}
		fh, err := os.Open(m.Path)
		if err == nil {
			return fh, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("folder %s uid %d: %w", f.name, uid, err)
		}
	}
	return nil, fmt.Errorf("folder %s uid %d: %w", f.name, uid, ErrNoSuchMessage)
}

// OpenMessage opens the message m (from a snapshot), following renames.
func (f *Folder) OpenMessage(m MessageInfo) (*os.File, error) {
	if m.Path != "" {
		fh, err := os.Open(m.Path)
		if err == nil {
			return fh, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("folder %s uid %d: %w", f.name, m.UID, err)
		}
	}
	return f.Open(m.UID)
}
