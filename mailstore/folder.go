package mailstore

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

var errNotYet = errors.New("mailstore: not implemented yet")

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
	// sorted.
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

// HasFlag reports whether m carries flag (case-insensitive for system flags).
func (m MessageInfo) HasFlag(flag string) bool { return hasFlag(m.Flags, flag) }

// Snapshot is an immutable view of a folder. Messages are sorted by UID.
// Callers must not modify it.
type Snapshot struct {
	UIDValidity uint32
	UIDNext     uint32
	Messages    []MessageInfo
	// Keywords are the folder's keyword names, index = letter-'a'.
	Keywords []string
}

// Lookup returns the message with uid.
func (s *Snapshot) Lookup(uid uint32) (MessageInfo, bool) { return MessageInfo{}, false }

// Index returns the position of uid in Messages (the IMAP sequence number
// minus one), or -1.
func (s *Snapshot) Index(uid uint32) int { return -1 }

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

// Folder is one mailbox of a Store. It is safe for concurrent use.
type Folder struct {
	store *Store
	name  string
	dir   string // absolute
}

// Name returns the folder's IMAP name.
func (f *Folder) Name() string { return f.name }

// Dir returns the folder's absolute directory.
func (f *Folder) Dir() string { return f.dir }

// Store returns the store the folder belongs to.
func (f *Folder) Store() *Store { return f.store }

// UIDValidity returns the UIDVALIDITY as of the last sync (Folder syncs
// when opened; Snapshot and Refresh sync again).
func (f *Folder) UIDValidity() uint32 { return 0 }

// UIDNext returns the next UID as of the last sync.
func (f *Folder) UIDNext() uint32 { return 0 }

// Snapshot returns the folder's current state, syncing with the disk
// first: files without a uidlist entry (e.g. delivered by another program)
// get the next UIDs. An unchanged folder returns the cached snapshot after
// three stat calls. Files in new/ stay there (see ClaimRecent).
func (f *Folder) Snapshot(ctx context.Context) (*Snapshot, error) { return nil, errNotYet }

// Refresh syncs with the disk like Snapshot, publishes the differences to
// the last snapshot as Changes on the Hub, and returns them. Meant to be
// polled (e.g. every 500 ms during IDLE) to notice other processes.
func (f *Folder) Refresh(ctx context.Context) ([]Change, error) { return nil, errNotYet }

// ClaimRecent moves the files of new/ to cur/ (dovecot's "recent"
// semantics: the first session that sees them reports them \Recent) and
// returns their UIDs. UIDs are unchanged.
func (f *Folder) ClaimRecent(ctx context.Context) ([]uint32, error) { return nil, errNotYet }

// Open opens the message with uid for reading. If another process renamed
// the file meanwhile, the folder is re-synced and the open retried.
func (f *Folder) Open(uid uint32) (*os.File, error) { return nil, errNotYet }

// OpenMessage opens the message m (from a snapshot), following renames.
func (f *Folder) OpenMessage(m MessageInfo) (*os.File, error) { return nil, errNotYet }

// Append stores the message read from r with flags and internal date
// (zero means now): written to tmp/, fsynced, renamed into new/ (no
// flags) or cur/, then given the next UID under the uidlist lock.
// ErrOverQuota if the store's quota would be exceeded.
func (f *Folder) Append(ctx context.Context, r io.Reader, flags []string, date time.Time) (uint32, error) {
	return 0, errNotYet
}

// StoreFlags changes the flags of the messages with uids (missing UIDs
// are skipped) by renaming their files, and returns their new infos.
func (f *Folder) StoreFlags(ctx context.Context, uids []uint32, op FlagOp, flags []string) ([]MessageInfo, error) {
	return nil, errNotYet
}

// Copy copies the messages with uids to dst (hard links when possible,
// flags and internal dates kept) and returns source → destination UIDs
// in source UID order.
func (f *Folder) Copy(ctx context.Context, uids []uint32, dst *Folder) ([]UIDPair, error) {
	return nil, errNotYet
}

// Move copies the messages to dst, then expunges them from f.
func (f *Folder) Move(ctx context.Context, uids []uint32, dst *Folder) ([]UIDPair, error) {
	return nil, errNotYet
}

// Expunge removes the messages with uids and returns the UIDs removed.
func (f *Folder) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	return nil, errNotYet
}

// ExpungeDeleted removes the messages flagged \Deleted (IMAP EXPUNGE);
// with uids non-nil only those among them (UID EXPUNGE).
func (f *Folder) ExpungeDeleted(ctx context.Context, uids []uint32) ([]uint32, error) {
	return nil, errNotYet
}

var _ = io.EOF
