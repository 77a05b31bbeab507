package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Importer writes many messages with given UIDs into one folder, fast:
// files are written to tmp/ with the UID in the name (",U=<uid>", which
// dovecot ignores) and mtime = date; in batches (Checkpoint) they are made
// durable with one syncfs(2) (parallel fsyncs where that is missing) and
// renamed into cur/; Commit checkpoints and writes dovecot-keywords and
// dovecot-uidlist once.
//
// Resume: an Importer on a folder holding files from an earlier, killed
// import reports the UIDs that reached cur/ (Has, Existing) so they can be
// skipped; importer files left in tmp/ (not yet durable) are removed, and a file in cur/ whose size does
// not match its S= is removed too (a crash before its data reached the
// disk). Messages in the folder that no importer placed (e.g. delivered
// meanwhile) are listed by Others and, at Commit, get UIDs after the
// imported ones (their old UIDs are kept when UIDVALIDITY is unchanged
// and they do not collide).
//
// The quota is not enforced during an import (the migration checks sizes
// itself); maildirsize is recomputed at Commit when a quota is set.
//
// An Importer is not safe for concurrent use.
type Importer struct {
	s           *Store
	name, dir   string
	uidValidity uint32
	uidNext     uint32
	existing    map[uint32]MessageInfo
	others      []MessageInfo
	kw          []string
	kwIdx       map[string]int
	kwChanged   bool
	pending     []importJob
	pendBytes   int64
	inFlight    chan error // result of the background flush, if any
	done        bool
	buf         []byte
}

// importJob is a file written to tmp/ and not yet durable nor in cur/.
type importJob struct {
	tmp, dst string
}

// Checkpoint sizes: pending files are made durable and moved into cur/
// in batches of this many bytes or files, so a killed import loses at
// most one batch.
var (
	checkpointBytes int64 = 128 << 20
	checkpointFiles       = 8192
)

// Importer starts an import into folder (created if missing) that will
// set UIDVALIDITY to uidValidity at Commit.
func (s *Store) Importer(folder string, uidValidity uint32) (*Importer, error) {
	if uidValidity == 0 {
		return nil, fmt.Errorf("import %s: UIDVALIDITY 0", folder)
	}
	dir, name, err := s.dirOf(folder)
	if err != nil {
		return nil, err
	}
	switch {
	case dir != s.root && !isDir(dir):
		// A new folder appears complete or not at all.
		if err := s.createFolderDir(name); err != nil && !errors.Is(err, ErrFolderExists) {
			return nil, fmt.Errorf("import %s: %w", name, err)
		}
	case !isDir(filepath.Join(dir, "cur")) || !isDir(filepath.Join(dir, "new")) || !isDir(filepath.Join(dir, "tmp")):
		// INBOX on first use, or a folder whose creation was killed
		// half-way (found by the converter's TestConvertKilled):
		// complete it.
		if err := s.makeMaildir(dir, dir != s.root); err != nil {
			return nil, err
		}
	}
	im := &Importer{s: s, name: name, dir: dir, uidValidity: uidValidity, existing: map[uint32]MessageInfo{}, buf: alignedBuf(directBuf)}
	if err := im.cleanTmp(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	if im.kw, err = parseKeywords(data); err != nil {
		return nil, fmt.Errorf("import %s: dovecot-keywords: %w", name, err)
	}
	im.kwIdx = keywordIndex(im.kw)
	if err := im.scan(); err != nil {
		return nil, err
	}
	return im, nil
}

// cleanTmp removes files a killed importer left in tmp/ (only those with
// the ",U=" marker: other writers may be using tmp/ right now).
func (im *Importer) cleanTmp() error {
	tmp := filepath.Join(im.dir, "tmp")
	names, err := readNames(tmp)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, _, uid := sizesFromKey(keyOf(n)); uid != 0 {
			if err := os.Remove(filepath.Join(tmp, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("import %s: clean %s: %w", im.name, n, err)
			}
		}
	}
	return nil
}

// scan finds the messages already in the folder.
func (im *Importer) scan() error {
	data, err := os.ReadFile(filepath.Join(im.dir, "dovecot-uidlist"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("import %s: %w", im.name, err)
	}
	ul, err := parseUIDList(data)
	if err != nil {
		im.s.log.Warn("import: ignoring broken dovecot-uidlist", "folder", im.name, "err", err)
		ul = &uidlist{Keys: map[string]uint32{}}
	}
	for _, sub := range []string{"cur", "new"} {
		d := filepath.Join(im.dir, sub)
		names, err := readNames(d)
		if err != nil {
			return err
		}
		sort.Strings(names)
		for _, n := range names {
			if n == "" || n[0] == '.' {
				continue
			}
			path := filepath.Join(d, n)
			st, err := os.Lstat(path)
			if err != nil || !st.Mode().IsRegular() {
				continue
			}
			key := keyOf(n)
			size, vsize, uid := sizesFromKey(key)
			m := MessageInfo{UID: uid, Key: key, Flags: ParseFlags(n, im.kw), InternalDate: st.ModTime(), Size: size, VSize: vsize, Path: path, Recent: sub == "new"}
			if uid == 0 {
				m.UID = ul.Keys[key]
				if m.Size < 0 {
					m.Size = st.Size()
				}
				im.others = append(im.others, m)
				continue
			}
			if size != st.Size() {
				im.s.log.Warn("import: removing incomplete file of an earlier run", "path", path, "size", st.Size(), "want", size)
				if err := os.Remove(path); err != nil {
					return fmt.Errorf("import %s: %w", im.name, err)
				}
				continue
			}
			if _, dup := im.existing[uid]; dup {
				im.s.log.Warn("import: removing duplicate file of an earlier run", "path", path, "uid", uid)
				if err := os.Remove(path); err != nil {
					return fmt.Errorf("import %s: %w", im.name, err)
				}
				continue
			}
			im.existing[uid] = m
		}
	}
	return nil
}

// Has reports whether a message with uid was imported already (in this
// or an earlier run).
func (im *Importer) Has(uid uint32) bool {
	_, ok := im.existing[uid]
	return ok
}

// Existing returns the messages placed by an importer, by UID (a copy).
func (im *Importer) Existing() map[uint32]MessageInfo {
	out := make(map[uint32]MessageInfo, len(im.existing))
	for k, v := range im.existing {
		out[k] = v
	}
	return out
}

// Others returns the messages in the folder that no importer placed, with
// their current UID (0 if none yet).
func (im *Importer) Others() []MessageInfo { return append([]MessageInfo(nil), im.others...) }

// RemoveOther deletes a message listed by Others (e.g. a duplicate of an
// imported one).
func (im *Importer) RemoveOther(key string) error {
	for i, m := range im.others {
		if m.Key == key {
			if err := os.Remove(m.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("import %s: remove %s: %w", im.name, m.Path, err)
			}
			im.others = append(im.others[:i], im.others[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("import %s: %s: %w", im.name, key, ErrNoSuchMessage)
}

// Add writes one message with uid, flags and internal date. size is the
// expected size or -1; a mismatch is an error. S= and W= are computed
// while copying. ErrUIDExists if uid is present; ErrTooManyKeywords past
// 26 keywords.
func (im *Importer) Add(ctx context.Context, r io.Reader, size int64, uid uint32, flags []string, date time.Time) error {
	if im.done {
		return fmt.Errorf("import %s: importer finished", im.name)
	}
	if uid == 0 {
		return fmt.Errorf("import %s: UID 0", im.name)
	}
	if im.Has(uid) {
		return fmt.Errorf("import %s uid %d: %w", im.name, uid, ErrUIDExists)
	}
	if date.IsZero() {
		date = im.s.now()
	}
	flags = normFlags(flags)
	for _, fl := range flags {
		if strings.HasPrefix(fl, `\`) {
			continue
		}
		if _, ok := im.kwIdx[fl]; ok {
			continue
		}
		slot := -1
		for i, k := range im.kw {
			if k == "" {
				slot = i
				break
			}
		}
		if slot < 0 {
			if len(im.kw) >= 26 {
				return fmt.Errorf("import %s uid %d keyword %q: %w", im.name, uid, fl, ErrTooManyKeywords)
			}
			im.kw = append(im.kw, "")
			slot = len(im.kw) - 1
		}
		im.kw[slot] = fl
		im.kwIdx[fl] = slot
		im.kwChanged = true
	}
	key := fmt.Sprintf("%s,U=%d", im.s.newKey(im.s.now()), uid)
	tmp := filepath.Join(im.dir, "tmp", key)
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("import %s uid %d: %w", im.name, uid, err)
	}
	fail := func(err error) error {
		fh.Close()
		os.Remove(tmp)
		return err
	}
	var c sizeCounter
	direct := false // see direct.go
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		var n int
		var rerr error
		if first {
			// Small messages are read and written whole as before; one
			// that fills the first chunk and has more is big.
			n, rerr = io.ReadFull(r, im.buf[:directChunk])
			if rerr == nil {
				direct = setDirect(fh, true)
				var m int
				m, rerr = io.ReadFull(r, im.buf[n:])
				n += m
			}
		} else {
			n, rerr = io.ReadFull(r, im.buf)
		}
		if rerr == io.ErrUnexpectedEOF {
			rerr = io.EOF
		}
		if n > 0 {
			c.Write(im.buf[:n])
			if err := writeChunk(fh, im.buf, n, &direct); err != nil {
				return fail(fmt.Errorf("import %s uid %d: write %s at byte %d: %w", im.name, uid, tmp, c.size-int64(n), err))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("import %s uid %d: read at byte %d: %w", im.name, uid, c.size, rerr))
		}
	}
	if size >= 0 && c.size != size {
		return fail(fmt.Errorf("import %s uid %d: read %d bytes, want %d", im.name, uid, c.size, size))
	}
	if err := os.Chtimes(tmp, date, date); err != nil {
		return fail(fmt.Errorf("import %s uid %d: %w", im.name, uid, err))
	}
	key = fmt.Sprintf("%s,S=%d,W=%d", key, c.size, c.vsize)
	dst := filepath.Join(im.dir, "cur", key+":2,"+formatInfo(flags, im.kwIdx, ""))
	if err := fh.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("import %s uid %d: %w", im.name, uid, err)
	}
	im.pending = append(im.pending, importJob{tmp: tmp, dst: dst})
	im.pendBytes += c.size
	if im.pendBytes >= checkpointBytes || len(im.pending) >= checkpointFiles {
		if err := im.checkpointAsync(); err != nil {
			return err
		}
	}
	im.existing[uid] = MessageInfo{UID: uid, Key: key, Flags: flags, InternalDate: date, Size: c.size, VSize: c.vsize, Path: dst}
	return nil
}

// SetUIDNext asks Commit to write at least next as the next UID (e.g. the
// source's last UID + 1).
func (im *Importer) SetUIDNext(next uint32) {
	if next > im.uidNext {
		im.uidNext = next
	}
}

// Abort stops the import. Messages already moved into cur/ stay for a
// resume; those still pending in tmp/ are removed.
func (im *Importer) Abort() error {
	if im.done {
		return nil
	}
	im.done = true
	err := im.waitFlush()
	for _, j := range im.pending {
		os.Remove(j.tmp)
		delete(im.existing, uidOfKey(j.dst))
	}
	im.pending = nil
	return err
}

func uidOfKey(path string) uint32 {
	_, _, uid := sizesFromKey(keyOf(nameOf(path)))
	return uid
}

// Checkpoint makes every message added so far durable and moves it into
// cur/, so a resumed import finds it (Has). Add does this by itself every
// 128 MiB or 8192 messages (in the background, overlapping the next
// batch's writes); Commit does it last.
func (im *Importer) Checkpoint() error {
	if im.done {
		return fmt.Errorf("import %s: importer finished", im.name)
	}
	return im.checkpoint()
}

// checkpoint flushes the pending batch and waits for it.
func (im *Importer) checkpoint() error {
	if err := im.waitFlush(); err != nil {
		return err
	}
	if err := im.keywordsFirst(); err != nil {
		return err
	}
	batch := im.pending
	im.pending, im.pendBytes = nil, 0
	if err := im.flush(batch); err != nil {
		return err
	}
	return nil
}

// checkpointAsync starts flushing the pending batch in the background
// (after the previous one finished), so writing the next batch overlaps
// the syncfs.
func (im *Importer) checkpointAsync() error {
	if err := im.waitFlush(); err != nil {
		return err
	}
	if err := im.keywordsFirst(); err != nil {
		return err
	}
	batch := im.pending
	im.pending, im.pendBytes = nil, 0
	ch := make(chan error, 1)
	im.inFlight = ch
	go func() { ch <- im.flush(batch) }()
	return nil
}

// keywordsFirst writes dovecot-keywords before a batch whose names use
// new keyword letters is renamed into cur/: after a kill -9 a resumed
// import (or dovecot) must read the same letters (docs/mailstore.md).
func (im *Importer) keywordsFirst() error {
	if !im.kwChanged || len(im.pending) == 0 {
		return nil
	}
	if err := im.writeKeywords(context.Background()); err != nil {
		return err
	}
	im.kwChanged = false
	return nil
}

// waitFlush waits for the background flush, if any.
func (im *Importer) waitFlush() error {
	if im.inFlight == nil {
		return nil
	}
	err := <-im.inFlight
	im.inFlight = nil
	return err
}

// flush makes batch durable (one syncfs of the file system, or parallel
// fsyncs where syncfs is not available), renames it into cur/ and fsyncs
// cur/. Files not renamed stay in tmp/, where the next Importer removes
// them.
func (im *Importer) flush(batch []importJob) error {
	if len(batch) == 0 {
		return nil
	}
	if !im.s.opts.NoFsync {
		if err := syncFiles(im.dir, batch); err != nil {
			return fmt.Errorf("import %s: %w", im.name, err)
		}
	}
	for _, j := range batch {
		if err := os.Rename(j.tmp, j.dst); err != nil {
			return fmt.Errorf("import %s: %w", im.name, err)
		}
	}
	if !im.s.opts.NoFsync {
		return syncDir(filepath.Join(im.dir, "cur"))
	}
	return nil
}

// syncFiles makes the data of jobs' tmp files durable.
func syncFiles(dir string, jobs []importJob) error {
	if err := syncFS(dir); err == nil {
		return nil
	}
	workers := runtime.GOMAXPROCS(0) * 4
	ch := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for p := range ch {
				fh, err := os.Open(p)
				if err == nil {
					err = fh.Sync()
					fh.Close()
				}
				if err != nil && first == nil {
					first = fmt.Errorf("fsync %s: %w", p, err)
				}
			}
			errs <- first
		}()
	}
	for _, j := range jobs {
		ch <- j.tmp
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
