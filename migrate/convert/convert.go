// Package convert moves one user's UW-IMAP mail — the INBOX spool, the
// mbox folders below ~/mail and ~/.mailboxlist — into a dovecot Maildir++
// tree through mailstore, keeping every message byte (minus c-client's
// bookkeeping headers), UIDs, UIDVALIDITY, flags, keywords, internal
// dates and subscriptions, and then verifies the result message by
// message.
//
// Implementation notes:
//   - Sources are opened read-only and never written. The INBOX spool is
//     locked the UW-IMAP way (migrate/spool: dot-lock plus advisory
//     locks) while the dedup index is built and the spool is copied to an
//     unlinked snapshot file; the conversion reads the snapshot. Dual
//     delivery writes both sides under the same lock, so each delivered
//     message is in both the index and the snapshot, or in neither.
//   - Messages go through mailstore.Importer: tmp/ then rename, fsync of
//     files and directories in Commit before the uidlist is written. A run
//     killed at any point is completed by running it again: messages whose
//     UID the importer already holds are skipped (and still verified).
//   - Dedup ("kept once"): messages of the new store that no importer
//     placed (dual delivery, possibly filed by Sieve into another folder)
//     are indexed by ContentHash; a source message with the same hash is
//     not copied again. Only then are source messages buffered (bounded,
//     spilling to a temporary file) to know their hash before writing.
//   - Incremental (cutover): per folder, messages whose hash is neither in
//     the target folder nor in the journal of the last full run
//     (JournalName in the folder's directory) are appended with new UIDs;
//     nothing is overwritten or renumbered, and expunged mail does not
//     come back.
//   - Verification re-reads every folder through mailstore and compares
//     UID, flags and the SHA-256 of the bytes with what was read from the
//     source. A mismatch is ErrVerify, not a warning.
package convert

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Errors of Run; match with errors.Is.
var (
	// ErrTooBig: the folders (INBOX excluded) exceed Options.MaxFolderBytes.
	// The INBOX was converted; the folders were not. Report.FolderBytes and
	// the per-folder sizes say by how much.
	ErrTooBig = errors.New("convert: folders exceed the size limit")
	// ErrVerify: the new store does not hold what the source held.
	ErrVerify = errors.New("convert: verification failed")
	// ErrPartial: some source files could not be converted (not mbox,
	// unreadable); the others were. Report.Skipped names them.
	ErrPartial = errors.New("convert: some folders could not be converted")
	// ErrUnreadable: a file or directory that may hold mail could not be
	// read (permission, I/O error), or the INBOX is not a regular file (a
	// FIFO or device). Never a silent skip: Report.Unreadable names each
	// path with the reason; what could be read was converted, and a rerun
	// once the cause is fixed completes the copy.
	ErrUnreadable = errors.New("convert: some files could not be read")
)

// Options say what to convert where.
type Options struct {
	// Inbox is the INBOX spool (mbox); "" or a missing file means no INBOX
	// mail.
	Inbox string
	// FoldersDir holds the mbox folders (~/mail); "" means none.
	FoldersDir string
	// Subscriptions is c-client's ~/.mailboxlist; "" or missing means none.
	Subscriptions string
	// Maildir is the new store's root (~/Maildir); created if missing.
	Maildir string
	// MaxFolderBytes limits the folders' total size (0 = no limit); the
	// INBOX is always copied.
	MaxFolderBytes int64
	// Charset decodes folder names that are not UTF-8 ("latin1" if empty).
	Charset string
	// DryRun plans and measures only; nothing is written.
	DryRun bool
	// Incremental adds only messages not yet in the new store (cutover).
	Incremental bool
	// NoVerify skips the verification pass (benchmarks only).
	NoVerify bool
	// UnescapeFrom undoes mboxrd quoting (off: UW-IMAP served ">From ").
	UnescapeFrom bool
	// Location is the zone of From_ dates without one (nil = time.Local).
	Location *time.Location
	// Workers is how many folders are converted at a time (0 =
	// DefaultWorkers); the INBOX goes first.
	Workers int
	// NoFsync turns off fsync in the store (tests and benchmarks only).
	NoFsync bool
	// NoInboxLock reads the INBOX without the spool lock (tests of
	// read-only sources that cannot hold a lock file).
	NoInboxLock bool
	// Hostname goes into new file names ("" = os.Hostname).
	Hostname string
	// Logger receives progress and problems (nil = slog.Default()).
	Logger *slog.Logger
	// Progress, if set, is called after each message and folder.
	Progress func(Progress)
}

// Progress is a snapshot of a running conversion, per folder: Messages
// and Bytes (source bytes read; for .gz the uncompressed offset) count
// within Folder; the last call for a folder has Done set and Bytes = the
// source file's size. TotalBytes is the size of all sources of the run.
type Progress struct {
	Folder     string `json:"folder"`
	Messages   int    `json:"messages"`
	Bytes      int64  `json:"bytes"`
	TotalBytes int64  `json:"total_bytes"`
	Done       bool   `json:"done"`
}

// Skipped is something that was not converted, and why.
type Skipped struct {
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	UID    uint32 `json:"uid,omitempty"`
	Reason string `json:"reason"`
}

// FolderReport describes one converted folder.
type FolderReport struct {
	// Source is the source file's path.
	Source string `json:"source"`
	// OldName is the folder's name on the old server, decoded to UTF-8.
	OldName string `json:"old_name"`
	// Name is the IMAP name in the new store.
	Name string `json:"name"`
	// Renaming is set when Name differs from OldName.
	Renaming *Renaming `json:"renaming,omitempty"`
	// SourceBytes is the source file's size (compressed size for .gz).
	SourceBytes int64 `json:"source_bytes"`
	// Messages and Bytes count the messages in the new folder that came
	// from the source (copied now, earlier, or kept once).
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"`
	// Copied were written by this run; AlreadyPresent by an earlier run;
	// KeptOnce were in the new store already by dual delivery.
	Copied         int `json:"copied"`
	AlreadyPresent int `json:"already_present"`
	// CopiedBytes is the size of the Copied messages as stored.
	CopiedBytes int64 `json:"copied_bytes"`
	KeptOnce    int   `json:"kept_once"`
	// Renumbered messages got a new UID (no usable X-UID), with reasons.
	Renumbered []Skipped `json:"renumbered,omitempty"`
	// UIDValidity and UIDNext of the new folder.
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	// Skipped lists dropped bookkeeping values and other problems.
	Skipped []Skipped `json:"skipped,omitempty"`
	// Error is set when the folder could not be converted.
	Error string `json:"error,omitempty"`
	// Verified is true when the verification pass succeeded.
	Verified bool `json:"verified"`
}

// Report is the result of Run, meant to be stored as JSON.
type Report struct {
	Inbox       string    `json:"inbox,omitempty"`
	FoldersDir  string    `json:"folders_dir,omitempty"`
	Maildir     string    `json:"maildir"`
	DryRun      bool      `json:"dry_run,omitempty"`
	Incremental bool      `json:"incremental,omitempty"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	// Folders lists INBOX first, then the folders by source path.
	Folders []FolderReport `json:"folders"`
	// Renamings lists every folder and subscription whose name changed.
	Renamings []Renaming `json:"renamings,omitempty"`
	// Subscriptions are the new store's subscriptions after the run.
	Subscriptions []string `json:"subscriptions,omitempty"`
	// Skipped lists files and subscriptions that were not converted.
	Skipped []Skipped `json:"skipped,omitempty"`
	// Unreadable lists files and directories that could not be read
	// (Run returns ErrUnreadable); they may hold mail that was not copied.
	Unreadable []Skipped `json:"unreadable,omitempty"`
	// Totals. FolderBytes is the source size of the folders (INBOX
	// excluded), compared with MaxFolderBytes.
	Messages       int   `json:"messages"`
	Bytes          int64 `json:"bytes"`
	InboxBytes     int64 `json:"inbox_bytes"`
	FolderBytes    int64 `json:"folder_bytes"`
	MaxFolderBytes int64 `json:"max_folder_bytes,omitempty"`
	TooBig         bool  `json:"too_big,omitempty"`
	Verified       bool  `json:"verified"`
	// InboxLockHeld is how long the INBOX spool was locked (empty when it
	// was not).
	InboxLockHeld string `json:"inbox_lock_held,omitempty"`
}

// RenamingList returns every renaming (for the confirmation mail).
func (r *Report) RenamingList() []Renaming { return r.Renamings }

// Run converts according to opts and returns the report. The report is
// returned (as far as it got) also with an error.
func Run(ctx context.Context, opts Options) (*Report, error) {
	c, err := newConverter(opts)
	if err != nil {
		return nil, err
	}
	return c.run(ctx)
}
