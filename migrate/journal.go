package migrate

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mailmig/migrate/convert"
	"mailmig/migrate/paths"
	"mailmig/migrate/spool"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
)

// DeliverJournal is the file in a user's new Maildir root where `mailmig
// deliver` records, per message (Message-ID and content hash), which
// sides it finished: a delivery killed anywhere (kill -9, power loss) and
// retried by the MTA then leaves each message exactly once on each side.
//
// Lines (appended and fsynced, the file flock'ed while a delivery runs):
//
//	UNIXTIME old MSGID HASH OFFSET LENGTH   the old-mbox copy, where it is
//	UNIXTIME begin MSGID HASH               about to store in the new store
//	UNIXTIME new MSGID HASH                 stored in the new store
//
// An "old" line is only believed when the mbox still holds that message
// at OFFSET (a killed holder's partial append is truncated by the next
// locker, which may take a finished copy with it). A "begin" without
// "new" means the store may or may not have been reached: the user's
// Maildir is searched for a copy written since then.
const DeliverJournal = "mailmig-deliver-journal"

// journalKeep is how long entries are kept: longer than any MTA retries.
const journalKeep = 10 * 24 * time.Hour

// journalCompactAt: a journal bigger than this is rewritten without the
// entries older than journalKeep.
const journalCompactAt = 256 << 10

type journal struct {
	f    *os.File
	path string
	now  time.Time
	// Per "MSGID HASH" key.
	old      map[string][2]int64
	begin    map[string]time.Time
	newStore map[string]bool
	noFsync  bool
}

// messageKey is the journal key of msg: the Message-ID of its header
// (without spaces, "-" if none) and convert.ContentHash, computed while
// reading it.
func messageKey(msg msgspool.Source) (key, hash string, err error) {
	id := "-"
	hdr, err := msgspool.HeaderPrefix(msg)
	if err != nil {
		return "", "", err
	}
	for _, line := range bytes.Split(hdr, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(string(k))) == "Message-Id" {
			if f := strings.Fields(string(v)); len(f) > 0 {
				id = f[0]
			}
			break
		}
	}
	h := convert.NewContentHasher()
	if _, err := io.Copy(h, msgspool.NewReader(msg)); err != nil {
		return "", "", fmt.Errorf("hash message: %w", err)
	}
	hash = h.Sum()
	return id + " " + hash, hash, nil
}

// hashFrom is the convert.ContentHash of what r yields.
func hashFrom(r io.Reader) (string, error) {
	h := convert.NewContentHasher()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return h.Sum(), nil
}

// openJournal opens and locks the journal in maildir (created if
// missing) and reads it.
func openJournal(maildir string, now time.Time, noFsync bool) (*journal, error) {
	if err := os.MkdirAll(maildir, 0o700); err != nil {
		return nil, fmt.Errorf("deliver journal: %w", err)
	}
	path := filepath.Join(maildir, DeliverJournal)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("deliver journal: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("deliver journal: lock %s: %w", path, err)
	}
	j := &journal{f: f, path: path, now: now, old: map[string][2]int64{},
		begin: map[string]time.Time{}, newStore: map[string]bool{}, noFsync: noFsync}
	var keep []string
	lines := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	size := int64(0)
	for sc.Scan() {
		line := sc.Text()
		lines++
		size += int64(len(line)) + 1
		fl := strings.Fields(line)
		if len(fl) < 4 {
			continue // a line torn by a crash
		}
		ts, err := strconv.ParseInt(fl[0], 10, 64)
		if err != nil {
			continue
		}
		t := time.Unix(ts, 0)
		if now.Sub(t) > journalKeep {
			continue
		}
		keep = append(keep, line)
		key := fl[2] + " " + fl[3]
		switch fl[1] {
		case "old":
			if len(fl) == 6 {
				off, e1 := strconv.ParseInt(fl[4], 10, 64)
				n, e2 := strconv.ParseInt(fl[5], 10, 64)
				if e1 == nil && e2 == nil {
					j.old[key] = [2]int64{off, n}
				}
			}
		case "begin":
			j.begin[key] = t
		case "new":
			j.newStore[key] = true
		}
	}
	if size > journalCompactAt && len(keep) < lines {
		j.compact(keep)
	}
	return j, nil
}

// compact rewrites the journal with the kept lines (tmp + rename); the
// lock moves to the new file.
func (j *journal) compact(keep []string) {
	tmp := j.path + ".tmp"
	data := strings.Join(keep, "\n")
	if data != "" {
		data += "\n"
	}
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return
	}
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		os.Remove(tmp)
		return
	}
	if !j.noFsync {
		nf.Sync()
	}
	unix.Flock(int(nf.Fd()), unix.LOCK_EX)
	if err := os.Rename(tmp, j.path); err != nil {
		nf.Close()
		os.Remove(tmp)
		return
	}
	j.f.Close()
	j.f = nf
}

// record appends a line and makes it durable.
func (j *journal) record(kind, key string, args ...int64) error {
	if j.f == nil {
		return nil
	}
	line := strconv.FormatInt(j.now.Unix(), 10) + " " + kind + " " + key
	for _, a := range args {
		line += " " + strconv.FormatInt(a, 10)
	}
	if _, err := j.f.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("deliver journal %s: %w", j.path, err)
	}
	if !j.noFsync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("deliver journal %s: fsync: %w", j.path, err)
		}
	}
	return nil
}

func (j *journal) close() {
	if j.f != nil {
		j.f.Close()
	}
}

// oldDone reports whether the mbox at inbox still holds the copy the
// journal recorded for key: a From_ line at the offset and a message
// with the same content hash after it.
func (j *journal) oldDone(f io.ReaderAt, key, hash string) bool {
	loc, ok := j.old[key]
	if !ok || loc[1] <= 0 || loc[1] > 1<<31 {
		return false
	}
	// Streamed: the copy may be as big as any message.
	copyAt := io.NewSectionReader(f, loc[0], loc[1])
	br := bufio.NewReaderSize(copyAt, 4096)
	if head, err := br.Peek(5); err != nil || string(head) != "From " {
		return false
	}
	for { // skip the From_ line
		_, err := br.ReadSlice('\n')
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return false
		}
	}
	got, err := hashFrom(br)
	if err != nil {
		return false
	}
	// The copy must be all there: a short file is not the copy.
	if st, ok := f.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err != nil || fi.Size() < loc[0]+loc[1] {
			return false
		}
	}
	return got == hash
}

// storedSince looks in the Maildir (every folder's new/ and cur/) for a
// message with the content hash written since t: the copy a killed
// delivery may have stored before it could record it.
func storedSince(maildir, hash string, t time.Time) bool {
	dirs := []string{maildir}
	if ents, err := os.ReadDir(maildir); err == nil {
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), ".") && e.Name() != "." && e.Name() != ".." {
				dirs = append(dirs, filepath.Join(maildir, e.Name()))
			}
		}
	}
	since := t.Add(-2 * time.Second)
	for _, d := range dirs {
		for _, sub := range []string{"new", "cur"} {
			ents, err := os.ReadDir(filepath.Join(d, sub))
			if err != nil {
				continue
			}
			for _, e := range ents {
				fi, err := e.Info()
				if err != nil || fi.ModTime().Before(since) || !fi.Mode().IsRegular() {
					continue
				}
				if fileHash(filepath.Join(d, sub, e.Name())) == hash {
					return true
				}
			}
		}
	}
	return false
}

// fileHash is the convert.ContentHash of the file at path ("" if it
// cannot be read), streamed.
func fileHash(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h, err := hashFrom(f)
	if err != nil {
		return ""
	}
	return h
}

// deliverBoth is the dual-window delivery under the spool lock l, with
// the journal: each side is written unless the journal (checked against
// the files) shows an earlier, killed attempt already did it.
func (r *Router) deliverBoth(ctx context.Context, l *spool.Locked, env delivery.Envelope, p *paths.User, msg msgspool.Source, opts spool.Options) error {
	user := env.User
	j, err := openJournal(p.Maildir, r.now(), opts.NoFsync)
	if err != nil {
		// Deferring the mail for ever would be worse than the duplicate
		// a kill could cause: deliver as before, without the journal.
		r.log().Warn("deliver journal unavailable, delivering without it", "user", user, "err", err)
		j = emptyJournal()
	}
	defer j.close()
	key, hash, err := messageKey(msg)
	if err != nil {
		return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
	}
	var ar spool.Result
	appended := false
	rollback := func(cause error) error {
		if !appended {
			return nil
		}
		if rerr := l.Rollback(ar, opts); rerr != nil {
			r.log().Error("the old copy could not be taken back", "user", user, "err", cause, "rollback_err", rerr)
			return rerr
		}
		return nil
	}
	if j.oldDone(l.File(), key, hash) {
		r.log().Info("old copy already delivered by an interrupted attempt", "user", user, "key", key)
	} else {
		if ar, err = l.AppendFrom(env.From, r.now(), msgspool.NewReader(msg), opts); err != nil {
			return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
		}
		appended = true
		if err := j.record("old", key, ar.Offset, ar.Bytes-(ar.Offset-ar.OldSize)); err != nil {
			if rerr := rollback(err); rerr != nil {
				return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w (old copy kept: %v)", user, err, rerr))
			}
			return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
		}
		l.Committed()
	}
	done := j.newStore[key]
	if t, ok := j.begin[key]; ok && !done && storedSince(p.Maildir, hash, t) {
		r.log().Info("new copy already stored by an interrupted attempt", "user", user, "key", key)
		done = true
		if err := j.record("new", key); err != nil {
			r.log().Warn("deliver journal", "user", user, "err", err)
		}
	}
	if !done {
		if err := j.record("begin", key); err != nil {
			if rerr := rollback(err); rerr != nil {
				return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w (old copy kept: %v)", user, err, rerr))
			}
			return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
		}
		if err := r.NewStore(ctx, env, msg); err != nil {
			if rerr := rollback(err); rerr != nil {
				return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: new store: %w (old copy kept: %v)", user, err, rerr))
			}
			if appended {
				return fmt.Errorf("migrate: deliver to %s: new store (old copy taken back): %w", user, err)
			}
			return fmt.Errorf("migrate: deliver to %s: new store (old copy from an earlier attempt kept): %w", user, err)
		}
		if err := j.record("new", key); err != nil {
			// Stored: a retry finds the copy through the "begin" line.
			r.log().Warn("deliver journal", "user", user, "err", err)
		}
	}
	if r.Delivered != nil {
		r.Delivered(p, hash) // the hash messageKey computed
	}
	return nil
}

// emptyJournal stands in for a journal that could not be opened.
func emptyJournal() *journal {
	return &journal{old: map[string][2]int64{}, begin: map[string]time.Time{}, newStore: map[string]bool{}}
}

// deliverOld is the old-only delivery of a queued user under the spool
// lock l, journaled as the old half of deliverBoth: a retry after a kill
// that came after the append finds the copy and does not append it again.
func (r *Router) deliverOld(l *spool.Locked, env delivery.Envelope, p *paths.User, msg msgspool.Source, opts spool.Options) error {
	user := env.User
	j, err := openJournal(p.Maildir, r.now(), opts.NoFsync)
	if err != nil {
		r.log().Warn("deliver journal unavailable, delivering without it", "user", user, "err", err)
		j = emptyJournal()
	}
	defer j.close()
	key, hash, err := messageKey(msg)
	if err != nil {
		return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
	}
	if j.oldDone(l.File(), key, hash) {
		r.log().Info("old copy already delivered by an interrupted attempt", "user", user, "key", key)
		return nil
	}
	ar, err := l.AppendFrom(env.From, r.now(), msgspool.NewReader(msg), opts)
	if err != nil {
		return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
	}
	if err := j.record("old", key, ar.Offset, ar.Bytes-(ar.Offset-ar.OldSize)); err != nil {
		if rerr := l.Rollback(ar, opts); rerr != nil {
			r.log().Error("the old copy could not be taken back", "user", user, "err", err, "rollback_err", rerr)
			return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w (old copy kept: %v)", user, err, rerr))
		}
		return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
	}
	l.Committed()
	return nil
}

// deliverNew is the new-only delivery (a user who is done, or a server
// account outside the queue), journaled as the new half of deliverBoth
// in the user's Maildir (Router.Maildir): "begin" before the store, "new"
// after; a retry skips a message recorded "new", and after a "begin"
// without "new" looks in the Maildir for the copy the killed attempt may
// have written. Without a Maildir or a journal it delivers as before.
func (r *Router) deliverNew(ctx context.Context, env delivery.Envelope, msg msgspool.Source) error {
	user := env.User
	if r.Maildir == nil {
		return r.NewStore(ctx, env, msg)
	}
	md, err := r.Maildir(user)
	if err != nil || md == "" {
		r.log().Warn("deliver journal: no Maildir, delivering without it", "user", user, "err", err)
		return r.NewStore(ctx, env, msg)
	}
	j, err := openJournal(md, r.now(), r.Spool.NoFsync)
	if err != nil {
		r.log().Warn("deliver journal unavailable, delivering without it", "user", user, "err", err)
		return r.NewStore(ctx, env, msg)
	}
	defer j.close()
	key, hash, err := messageKey(msg)
	if err != nil {
		return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
	}
	if j.newStore[key] {
		r.log().Info("new copy already stored by an interrupted attempt", "user", user, "key", key)
		return nil
	}
	if t, ok := j.begin[key]; ok && storedSince(md, hash, t) {
		r.log().Info("new copy already stored by an interrupted attempt", "user", user, "key", key)
		if err := j.record("new", key); err != nil {
			r.log().Warn("deliver journal", "user", user, "err", err)
		}
		return nil
	}
	if err := j.record("begin", key); err != nil {
		return delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
	}
	if err := r.NewStore(ctx, env, msg); err != nil {
		return err
	}
	if err := j.record("new", key); err != nil {
		// Stored: a retry finds the copy through the "begin" line.
		r.log().Warn("deliver journal", "user", user, "err", err)
	}
	return nil
}
