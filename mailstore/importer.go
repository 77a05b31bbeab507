package mailstore

import (
	"context"
	"io"
	"time"
)

// Importer writes many messages with given UIDs into one folder, fast:
// files go straight into cur/ (tmp/ then rename, mtime = date) with the
// UID in the name (",U=<uid>", ignored by dovecot), and Commit fsyncs them
// in parallel and writes dovecot-uidlist and dovecot-keywords once.
//
// Resume: an Importer on a folder holding files from an earlier, killed
// import reports their UIDs (Has, Existing) so they can be skipped; stale
// tmp/ files are removed. Messages in the folder that no importer placed
// (e.g. delivered meanwhile) are listed by Others and, at Commit, get UIDs
// after the imported ones.
//
// An Importer is not safe for concurrent use.
type Importer struct{}

// Importer starts an import into folder (created if missing) that will
// set UIDVALIDITY to uidValidity at Commit.
func (s *Store) Importer(folder string, uidValidity uint32) (*Importer, error) {
	return nil, errNotYet
}

// Has reports whether a message with uid was imported already (in this
// or an earlier run).
func (im *Importer) Has(uid uint32) bool { return false }

// Existing returns the messages placed by an importer, by UID.
func (im *Importer) Existing() map[uint32]MessageInfo { return nil }

// Others returns the messages in the folder that no importer placed.
func (im *Importer) Others() []MessageInfo { return nil }

// RemoveOther deletes a message listed by Others (e.g. a duplicate of an
// imported one).
func (im *Importer) RemoveOther(key string) error { return errNotYet }

// Add writes one message with uid, flags and internal date. size is the
// expected size or -1; a mismatch is an error. S= and W= are computed
// while copying. ErrUIDExists if uid is present.
func (im *Importer) Add(ctx context.Context, r io.Reader, size int64, uid uint32, flags []string, date time.Time) error {
	return errNotYet
}

// SetUIDNext asks Commit to write at least next as the next UID (e.g. the
// source's last UID + 1).
func (im *Importer) SetUIDNext(next uint32) {}

// Commit fsyncs the new files and the directories, writes
// dovecot-keywords and dovecot-uidlist (under its lock), updates
// maildirsize and publishes the change. The Importer is done afterwards.
func (im *Importer) Commit() error { return errNotYet }

// Abort stops the import; files already written stay for a resume.
func (im *Importer) Abort() error { return nil }
