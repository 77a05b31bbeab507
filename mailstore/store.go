// Package mailstore is mailmig's message store: one user's Maildir++ tree
// laid out and annotated the way dovecot 2.3 does it, so that dovecot (and
// doveadm) can read what mailmig writes and mailmig can read what dovecot
// writes.
//
// A Store is one user's tree: INBOX is the root itself, folder "a/b" is the
// directory ".a.b" (names in modified UTF-7, RFC 3501 §5.1.3) holding an
// empty "maildirfolder" file. Per folder, "dovecot-uidlist" (version 3)
// maps file names to UIDs, "dovecot-keywords" maps keyword letters to
// names; at the root "subscriptions" lists subscribed folders and
// "maildirsize" holds the Maildir++ quota. See docs/mailstore.md for the
// formats as written.
//
// Implementation notes:
//   - UIDs are only handed out while holding dovecot's dot-lock
//     "dovecot-uidlist.lock" (O_EXCL create, stale after two minutes or
//     when its process is gone); the new uidlist is written to a temporary
//     file and renamed over the old one. So two processes, or dovecot and
//     mailmig, never hand out the same UID.
//   - A message's UID is keyed by the base of its file name (up to ':'),
//     so changing flags by rename keeps the UID.
//   - A Folder caches its last snapshot keyed by the mtimes of new/, cur/
//     and the uidlist; an unchanged folder costs three stat calls.
//   - Changes made through any Store that shares a Hub are published as
//     typed Change events; changes by other processes are found by
//     Folder.Refresh (cheap when nothing changed).
//   - Never hold a Folder's mutex while calling out (logging aside).
package mailstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Errors returned by the store; match them with errors.Is.
var (
	// ErrOverQuota is returned by Append when the message would exceed the
	// store's byte or message quota.
	ErrOverQuota = errors.New("mailstore: over quota")
	// ErrNoSuchFolder is returned for a folder that does not exist.
	ErrNoSuchFolder = errors.New("mailstore: no such folder")
	// ErrFolderExists is returned by CreateFolder and RenameFolder when the
	// target exists already.
	ErrFolderExists = errors.New("mailstore: folder exists")
	// ErrInvalidFolderName is returned for names that cannot be stored
	// (empty components, a '.' inside a component, bad UTF-8, ...).
	ErrInvalidFolderName = errors.New("mailstore: invalid folder name")
	// ErrNoSuchMessage is returned when a UID is not (or no longer) in the
	// folder.
	ErrNoSuchMessage = errors.New("mailstore: no such message")
	// ErrTooManyKeywords is returned when a folder would need more than 26
	// keywords (dovecot's maildir limit: letters a..z).
	ErrTooManyKeywords = errors.New("mailstore: too many keywords (max 26 per folder)")
	// ErrLockTimeout is returned when dovecot-uidlist.lock could not be
	// taken within Options.LockTimeout.
	ErrLockTimeout = errors.New("mailstore: uidlist lock timeout")
	// ErrUIDExists is returned by Importer.Add for a UID already present.
	ErrUIDExists = errors.New("mailstore: uid already present")
	// ErrInboxOp is returned when trying to delete or rename INBOX's
	// directory away (INBOX is the root).
	ErrInboxOp = errors.New("mailstore: operation not allowed on INBOX")
)

// Options configure a Store. The zero value is usable: fsync on, no quota,
// os.Hostname, slog.Default, the process-wide DefaultHub.
type Options struct {
	// Logger receives debug and warning messages; nil means slog.Default().
	Logger *slog.Logger
	// Hostname is used in new file names (TIME.UNIQUE.HOST); empty means
	// os.Hostname(). '/' and ':' are replaced as dovecot does.
	Hostname string
	// NoFsync turns off fsync of message files, directories and metadata.
	// Only for tests and benchmarks that measure without it.
	NoFsync bool
	// QuotaBytes and QuotaMessages limit the whole tree (0 = no limit);
	// enforced by Append and recorded in maildirsize.
	QuotaBytes    int64
	QuotaMessages int64
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Hub carries change events between Stores of this process; nil means
	// DefaultHub.
	Hub *Hub
	// LockTimeout bounds the wait for dovecot-uidlist.lock; 0 means 30s.
	LockTimeout time.Duration
	// CreateRoot creates root (and INBOX's cur/new/tmp) if missing; without
	// it Open fails on a missing root.
	CreateRoot bool
}

// Store is one user's Maildir++ tree. It is safe for concurrent use.
type Store struct {
	root    string
	opts    Options
	log     *slog.Logger
	hub     *Hub
	host    string
	mu      sync.Mutex
	folders map[string]*Folder // by IMAP name
	subMu   sync.Mutex
	quotaMu sync.Mutex
}

// FolderInfo describes one folder of the tree.
type FolderInfo struct {
	// Name is the IMAP name with '/' as separator, "INBOX" for the root.
	Name string
	// Dir is the directory relative to the root ("" for INBOX, ".a.b").
	Dir string
	// Subscribed tells whether Name is in the subscriptions file.
	Subscribed bool
	// SpecialUse is DefaultSpecialUse(Name, "junk") ("" for none).
	SpecialUse string
}

// Open opens the Maildir++ tree at root (the user's ~/Maildir).
func Open(root string, opts Options) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("mailstore: open %s: %w", root, err)
	}
	s := &Store{root: abs, opts: opts, folders: map[string]*Folder{}}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("maildir", abs)
	s.hub = opts.Hub
	if s.hub == nil {
		s.hub = DefaultHub
	}
	if s.opts.LockTimeout <= 0 {
		s.opts.LockTimeout = 30 * time.Second
	}
	s.host = opts.Hostname
	if s.host == "" {
		s.host, _ = os.Hostname()
		if s.host == "" {
			s.host = "localhost"
		}
	}
	s.host = sanitizeHost(s.host)
	if opts.CreateRoot {
		if err := s.makeMaildir(abs, false); err != nil {
			return nil, err
		}
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("mailstore: open %s: %w", abs, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("mailstore: open %s: not a directory", abs)
	}
	return s, nil
}

// Root returns the absolute path of the tree.
func (s *Store) Root() string { return s.root }

// Hub returns the hub the store publishes changes to.
func (s *Store) Hub() *Hub { return s.hub }

// Close releases cached state. Folders obtained from the store stay usable.
func (s *Store) Close() error {
	s.mu.Lock()
	s.folders = map[string]*Folder{}
	s.mu.Unlock()
	return nil
}

func (s *Store) now() time.Time {
	if s.opts.Clock != nil {
		return s.opts.Clock()
	}
	return time.Now()
}

// Watch returns a channel of changes to folder (IMAP name) made through any
// Store of this process that shares this Store's Hub (and found by
// Refresh), and a function that stops the watch and closes the channel.
// The channel never blocks publishers: events queue without bound until
// read.
func (s *Store) Watch(folder string) (<-chan Change, func()) {
	return s.hub.Watch(s.root, normalizeName(folder))
}

// WatchList returns a channel of the tree's folder list changes made
// through Stores of this process sharing this Store's Hub (created,
// deleted, renamed folders; subscriptions) and its stop function.
func (s *Store) WatchList() (<-chan Change, func()) {
	return s.hub.WatchList(s.root)
}

// ListStamp changes when folders or subscriptions may have changed,
// also by another process: the modification times of the root directory
// (folder directories are made and renamed there) and of the
// subscriptions file. Two equal stamps mean nothing to look at.
func (s *Store) ListStamp() string {
	var b []byte
	for _, p := range []string{s.root, filepath.Join(s.root, "subscriptions")} {
		if st, err := os.Stat(p); err == nil {
			b = fmt.Appendf(b, "%d/%d;", st.ModTime().UnixNano(), st.Size())
		} else {
			b = append(b, "-;"...)
		}
	}
	return string(b)
}
