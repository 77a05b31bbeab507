package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"mailmig/mailstore"
	"mailmig/migrate/mbox"
	"mailmig/migrate/mbx"
	"mailmig/migrate/mix"
)

// msgReader reads the messages of one old folder: mbox.Reader (mbox,
// MMDF), mbx.Reader or mix.Reader.
type msgReader interface {
	io.Reader
	Next() (*mbox.Message, error)
	UIDValidity() uint32
	UIDNext() uint32
	Offset() int64
}

// convertSource copies one mbox file into its folder and verifies it.
func (c *converter) convertSource(ctx context.Context, s *source, in io.Reader) (FolderReport, error) {
	sp := &spill{dir: filepath.Join(c.store.Root(), "tmp")} // same file system as the store
	defer sp.reset()
	fr := FolderReport{Source: s.path, OldName: s.oldName, Name: s.name, Renaming: s.ren, SourceBytes: s.size}
	log := c.log.With("source", s.path, "folder", s.name)
	var r msgReader
	if s.format == mbox.MIX {
		mr, err := mix.Open(s.path)
		if err != nil {
			fr.Error = err.Error()
			log.Error("not converted", "err", err)
			return fr, &sourceError{err: err}
		}
		defer mr.Close()
		r = mr
	} else {
		src, closeFn, err := c.open(s, in)
		if err != nil {
			fr.Error = err.Error()
			log.Error("cannot open source", "err", err)
			return fr, err
		}
		defer closeFn()
		if s.format == mbox.MBX {
			mo := mbx.Options{Name: s.path, Location: c.opts.Location, Size: s.size}
			if ra, ok := src.(io.ReaderAt); ok {
				// Refuse a damaged folder before writing any of it.
				if err := mbx.Check(ra, s.size, mo); err != nil {
					fr.Error = err.Error()
					log.Error("not converted", "err", err)
					return fr, &sourceError{err: err}
				}
			}
			r = mbx.NewReader(src, mo)
		} else {
			r = mbox.NewReader(src, mbox.Options{Name: s.path, Location: c.opts.Location, UnescapeFrom: c.opts.UnescapeFrom, BufferSize: 256 << 10, ModTime: s.mtime})
		}
	}
	first, err := r.Next()
	if err != nil && err != io.EOF {
		fr.Error = err.Error()
		log.Error("not converted", "err", err)
		return fr, srcErr(s, r, err)
	}
	if c.opts.Incremental {
		if f, ferr := c.store.Folder(s.name); ferr == nil && committedUIDValidity(c.store, s.name) != 0 {
			err := c.incremental(ctx, s, r, first, f, &fr, sp)
			if err != nil && fr.Error == "" {
				fr.Error = err.Error()
			}
			return fr, err
		}
	}
	uv := c.uidValidityFor(s.name, r.UIDValidity(), s.path)
	im, err := c.store.Importer(s.name, uv)
	if err != nil {
		fr.Error = err.Error()
		return fr, fmt.Errorf("convert: %s: importer for %q: %w", s.path, s.name, err)
	}
	fr.UIDValidity = uv
	want := map[uint32]expect{}
	if err := c.copyAll(ctx, s, r, first, im, want, &fr, sp); err != nil {
		im.Abort()
		if fr.Error == "" {
			fr.Error = err.Error()
		}
		return fr, err
	}
	im.SetUIDNext(r.UIDNext())
	if err := im.Commit(); err != nil {
		fr.Error = err.Error()
		return fr, fmt.Errorf("convert: commit %q: %w", s.name, err)
	}
	if err := c.writeJournal(s.name, want); err != nil {
		fr.Error = err.Error()
		return fr, err
	}
	if !c.opts.NoVerify {
		if err := c.verify(ctx, s.name, uv, want, &fr); err != nil {
			fr.Error = err.Error()
			return fr, err
		}
	}
	log.Info("folder converted", "messages", fr.Messages, "copied", fr.Copied, "already", fr.AlreadyPresent, "kept_once", fr.KeptOnce, "bytes", fr.Bytes)
	c.progress(Progress{Folder: s.name, Messages: fr.Messages, Bytes: s.size, TotalBytes: c.total, Done: true})
	return fr, nil
}

func (c *converter) progress(p Progress) {
	if c.opts.Progress != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.opts.Progress(p)
	}
}

// copyAll streams every message of r into im.
func (c *converter) copyAll(ctx context.Context, s *source, r msgReader, m *mbox.Message, im *mailstore.Importer, want map[uint32]expect, fr *FolderReport, sp *spill) error {
	cp := &copier{c: c, s: s, r: r, im: im, want: want, fr: fr, ch: newCountingHash(), sp: sp}
	for m != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := cp.one(ctx, m); err != nil {
			return err
		}
		next, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return srcErr(s, r, err)
		}
		m = next
	}
	return nil
}

type copier struct {
	c        *converter
	s        *source
	r        msgReader
	im       *mailstore.Importer
	want     map[uint32]expect
	fr       *FolderReport
	ch       *countingHash
	sp       *spill
	kw       keywordSet
	flagKeys map[string]string
	fresh    uint32 // highest UID given after a collision
}

func (cp *copier) one(ctx context.Context, m *mbox.Message) error {
	c, s, r, fr, ch := cp.c, cp.s, cp.r, cp.fr, cp.ch
	if m.UIDProblem != "" && (m.UIDProblem != "missing" || r.UIDValidity() != 0) {
		fr.Renumbered = append(fr.Renumbered, Skipped{Offset: m.Offset, UID: m.UID, Reason: "X-UID " + m.UIDProblem})
	}
	for _, sk := range m.Skipped {
		fr.Skipped = append(fr.Skipped, Skipped{Path: s.path, Offset: m.Offset, UID: m.UID, Reason: sk})
	}
	if m.HeaderTooLong {
		fr.Skipped = append(fr.Skipped, Skipped{Path: s.path, Offset: m.Offset, UID: m.UID, Reason: "header too long: bookkeeping fields left in the message"})
	}
	flags := cp.kw.flags(m, func(k string) {
		fr.Skipped = append(fr.Skipped, Skipped{Path: s.path, Offset: m.Offset, UID: m.UID, Reason: fmt.Sprintf("keyword %q dropped: a Maildir folder holds at most 26 keywords", k)})
	})
	uid := m.UID
	if cp.fresh >= uid {
		uid = cp.fresh + 1 // after a collision, later UIDs move up too
		cp.fresh = uid
		fr.Renumbered = append(fr.Renumbered, Skipped{Offset: m.Offset, UID: uid, Reason: fmt.Sprintf("UID %d moved after a collision", m.UID)})
	}
	ch.reset()
	switch {
	case cp.im.Has(uid):
		if _, err := io.Copy(ch, r); err != nil {
			return srcErr(s, r, err)
		}
		fr.AlreadyPresent++
	case c.index != nil:
		nh := NewContentHasher()
		if _, err := cp.sp.fill(r, io.MultiWriter(ch, nh)); err != nil {
			return srcErr(s, r, err)
		}
		if c.takeIndexed(c.index, nh.Sum()) {
			fr.KeptOnce++
			fr.Messages++
			fr.Bytes += ch.n
			return nil
		}
		if err := cp.add(ctx, cp.sp.reader(), ch.n, &uid, flags, m); err != nil {
			return err
		}
		fr.Copied++
		fr.CopiedBytes += ch.n
	default:
		if err := cp.add(ctx, io.TeeReader(r, ch), -1, &uid, flags, m); err != nil {
			return err
		}
		fr.Copied++
		fr.CopiedBytes += ch.n
	}
	fk := flagKey(flags)
	if v, ok := cp.flagKeys[fk]; ok {
		fk = v // share one string per flag combination: want holds every message
	} else {
		if cp.flagKeys == nil {
			cp.flagKeys = map[string]string{}
		}
		cp.flagKeys[fk] = fk
	}
	cp.want[uid] = expect{sum: ch.sum(), check: ch.check.Sum64(), flags: fk, size: ch.n}
	fr.Messages++
	fr.Bytes += ch.n
	c.progress(Progress{Folder: s.name, Messages: fr.Messages, Bytes: r.Offset(), TotalBytes: c.total})
	return nil
}

func srcErr(s *source, r msgReader, err error) error {
	var fe *mbox.FormatError
	if errors.As(err, &fe) {
		return &sourceError{err: err}
	}
	// Anything but a format problem is a read error: the file may hold
	// more mail than was copied.
	return &sourceError{err: fmt.Errorf("%s at byte %d: %w", s.path, r.Offset(), err), unreadable: true, path: s.path}
}

// add writes one message, moving it to a fresh UID if the importer says
// the UID is taken (only possible when the message is buffered).
func (cp *copier) add(ctx context.Context, body io.Reader, size int64, uid *uint32, flags []string, m *mbox.Message) error {
	err := cp.im.Add(ctx, &readErrMarker{r: body}, size, *uid, flags, m.Date)
	if errors.Is(err, mailstore.ErrUIDExists) && size >= 0 {
		n := cp.r.UIDNext()
		if cp.fresh >= n {
			n = cp.fresh + 1
		}
		cp.fr.Renumbered = append(cp.fr.Renumbered, Skipped{Offset: m.Offset, UID: n, Reason: fmt.Sprintf("UID %d taken in the new store", *uid)})
		*uid = n
		cp.fresh = n
		err = cp.im.Add(ctx, cp.sp.reader(), size, *uid, flags, m.Date)
	}
	if err != nil {
		var me *markedErr
		if errors.As(err, &me) {
			return srcErr(cp.s, cp.r, me.err)
		}
		return fmt.Errorf("convert: add UID %d to %q: %w", *uid, cp.fr.Name, err)
	}
	return nil
}

// readErrMarker marks errors that come from reading the source, so they
// can be told from the store's errors.
type readErrMarker struct{ r io.Reader }

type markedErr struct{ err error }

func (e *markedErr) Error() string { return e.err.Error() }
func (e *markedErr) Unwrap() error { return e.err }

func (m *readErrMarker) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = &markedErr{err}
	}
	return n, err
}

// maxKeywords is dovecot's limit per Maildir folder (letters a..z);
// c-client allowed 30.
const maxKeywords = 26

// keywordSet admits the first 26 distinct keywords of a folder, in
// message order (deterministic, so a rerun drops the same ones).
type keywordSet map[string]bool

// flags returns m's flags and admitted keywords; drop is called for each
// keyword left out.
func (ks *keywordSet) flags(m *mbox.Message, drop func(string)) []string {
	if *ks == nil {
		*ks = keywordSet{}
	}
	out := append([]string(nil), m.Flags...)
	for _, k := range m.Keywords {
		if !(*ks)[k] {
			if len(*ks) >= maxKeywords {
				drop(k)
				continue
			}
			(*ks)[k] = true
		}
		out = append(out, k)
	}
	return out
}
