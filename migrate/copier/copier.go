// Package copier adapts migrate/convert to the queue runner's Copier
// interface: full copy, incremental cutover pass, and the runner's report
// (folders, counts, sizes, renamings) from the converter's.
package copier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"mailmig/migrate"
	"mailmig/migrate/convert"
	"mailmig/migrate/paths"
	"mailmig/state"
)

// Convert is the runner's Copier: migrate/convert.
type Convert struct {
	// MaxFolderBytes is the folder copy limit (config limits.folder_copy).
	MaxFolderBytes int64
	// Charset of folder names that are not UTF-8.
	Charset string
	// Hostname goes into new file names.
	Hostname string
	// Location is the zone of From_ dates without one.
	Location *time.Location
	// NoFsync is for tests and benchmarks only.
	NoFsync bool
	Logger  *slog.Logger
}

var _ migrate.Copier = (*Convert)(nil)

// Prepare readies the new INBOX before dual delivery starts: the old
// INBOX's UIDVALIDITY and a UIDNEXT above its UIDs (convert.Prepare).
func (c *Convert) Prepare(ctx context.Context, e *state.Entry, p *paths.User) error {
	if _, err := convert.Prepare(ctx, c.options(e, p, false)); errors.Is(err, convert.ErrUnreadable) {
		return fmt.Errorf("%w: %w", migrate.ErrUnreadable, err)
	} else if err != nil {
		return fmt.Errorf("migrate: prepare %s: %w", e.User, err)
	}
	return nil
}

func (c *Convert) options(e *state.Entry, p *paths.User, incremental bool) convert.Options {
	o := convert.Options{
		Inbox:         p.Inbox,
		Subscriptions: p.Subscriptions,
		Maildir:       p.Maildir,
		Charset:       c.Charset,
		Incremental:   incremental,
		Location:      c.Location,
		NoFsync:       c.NoFsync,
		Hostname:      c.Hostname,
		Logger:        c.Logger,
	}
	if e.CopyFolders {
		o.FoldersDir = p.Folders
		if !incremental {
			// At cutover the user has accepted the copy: carry
			// everything over whatever its size.
			o.MaxFolderBytes = c.MaxFolderBytes
		}
	}
	return o
}

// Copy runs the converter (full or incremental) and turns its report into
// the runner's.
func (c *Convert) Copy(ctx context.Context, e *state.Entry, p *paths.User, incremental bool, progress func(bytes, messages int64)) (*migrate.Report, error) {
	o := c.options(e, p, incremental)
	if progress != nil {
		// Folders are converted a few at a time: keep each folder's
		// latest figures and report the sums (calls are serialised).
		type fig struct{ bytes, msgs int64 }
		per := map[string]fig{}
		var sumBytes, sumMsgs int64
		o.Progress = func(pr convert.Progress) {
			old := per[pr.Folder]
			cur := fig{pr.Bytes, int64(pr.Messages)}
			per[pr.Folder] = cur
			sumBytes += cur.bytes - old.bytes
			sumMsgs += cur.msgs - old.msgs
			progress(sumBytes, sumMsgs)
		}
	}
	rep, err := convert.Run(ctx, o)
	out := fromConvert(rep, incremental)
	switch {
	case errors.Is(err, convert.ErrUnreadable):
		// Never a silent skip: what could not be read may be mail.
		out.Skipped = skipped(rep)
		return out, fmt.Errorf("%w: %s", migrate.ErrUnreadable, unreadable(rep))
	case errors.Is(err, convert.ErrTooBig):
		return out, fmt.Errorf("%w: %d bytes of folders, limit %d (%s)", migrate.ErrOverLimit, rep.FolderBytes, rep.MaxFolderBytes, folderSizes(rep))
	case errors.Is(err, convert.ErrPartial) && !errors.Is(err, convert.ErrVerify):
		// Files in ~/mail that are not mailboxes (or cannot be read) are
		// left behind and listed; everything else was copied and verified.
		out.Skipped = skipped(rep)
		c.log().Warn("some old files were not copied", "user", e.User, "skipped", out.Skipped)
		return out, nil
	case err != nil:
		return out, err
	}
	return out, nil
}

func (c *Convert) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func skipped(rep *convert.Report) []string {
	var out []string
	for _, s := range rep.Skipped {
		out = append(out, s.Path+": "+s.Reason)
	}
	for _, f := range rep.Folders {
		if f.Error != "" {
			out = append(out, f.Source+": "+f.Error)
		}
	}
	return out
}

// unreadable lists the paths that could not be read, with the reasons.
func unreadable(rep *convert.Report) string {
	s := ""
	for _, u := range rep.Unreadable {
		if s != "" {
			s += "; "
		}
		s += u.Path + ": " + u.Reason
	}
	return s
}

func folderSizes(rep *convert.Report) string {
	if rep == nil {
		return ""
	}
	s := ""
	for _, f := range rep.Folders {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s %d bytes", f.OldName, f.SourceBytes)
	}
	return s
}

func fromConvert(rep *convert.Report, incremental bool) *migrate.Report {
	out := &migrate.Report{}
	if rep == nil {
		return out
	}
	for _, f := range rep.Folders {
		fr := migrate.FolderReport{Source: f.Source, Old: f.OldName, New: f.Name, Messages: int64(f.Messages), Bytes: f.Bytes}
		if incremental {
			// Only what this pass carried over, sized as stored.
			fr.Messages, fr.Bytes = int64(f.Copied), f.CopiedBytes
		}
		out.Folders = append(out.Folders, fr)
		out.Messages += fr.Messages
		out.Bytes += fr.Bytes
		out.Duplicates += int64(f.KeptOnce)
	}
	for _, rn := range rep.RenamingList() {
		out.Renamed = append(out.Renamed, migrate.Rename{Old: rn.Old, New: rn.New})
	}
	return out
}
