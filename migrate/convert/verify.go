package convert

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"mailmig/mailstore"
	"mailmig/migrate/mbox"
)

// JournalName is the file, in a folder's directory, listing the SHA-256
// of every source message a full run saw for that folder (one hex hash a
// line). Incremental runs skip those, so a message the user deleted in the
// new store after the copy does not come back at cutover. Dovecot ignores
// the file.
const JournalName = "mailmig-converted"

// verify re-reads folder through the store and compares it with want.
func (c *converter) verify(ctx context.Context, name string, uv uint32, want map[uint32]expect, fr *FolderReport) error {
	f, err := c.store.Folder(name)
	if err != nil {
		return fmt.Errorf("%w: folder %q: %w", ErrVerify, name, err)
	}
	snap, err := f.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("%w: folder %q: %w", ErrVerify, name, err)
	}
	fr.UIDValidity, fr.UIDNext = snap.UIDValidity, snap.UIDNext
	if snap.UIDValidity != uv {
		return fmt.Errorf("%w: folder %q: UIDVALIDITY %d, want %d", ErrVerify, name, snap.UIDValidity, uv)
	}
	have := make(map[uint32]mailstore.MessageInfo, len(snap.Messages))
	for _, m := range snap.Messages {
		have[m.UID] = m
	}
	uids := make([]uint32, 0, len(want))
	for u := range want {
		uids = append(uids, u)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	// Names and flags first; then the contents, read by verifyReaders
	// goroutines so one file's read overlaps another's checksum (big files
	// are read from the device: each read waits for it).
	problems := make([]string, len(uids))
	for i, u := range uids {
		w := want[u]
		m, ok := have[u]
		switch {
		case !ok:
			problems[i] = fmt.Sprintf("UID %d missing", u)
		case flagKey(m.Flags) != w.flags:
			problems[i] = fmt.Sprintf("UID %d flags %q, want %q", u, flagKey(m.Flags), w.flags)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < verifyReaders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(uids) {
					return
				}
				u, w := uids[i], want[uids[i]]
				m, ok := have[u]
				if !ok {
					continue
				}
				sum, n, err := checkFile(m.Path)
				var p string
				switch {
				case err != nil:
					p = fmt.Sprintf("UID %d: %v", u, err)
				case sum != w.check || n != w.size:
					p = fmt.Sprintf("UID %d content differs (%d bytes, want %d)", u, n, w.size)
				}
				if p != "" && problems[i] != "" {
					p = problems[i] + "; " + p // flags too
				}
				if p != "" {
					problems[i] = p
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	problems = slices.DeleteFunc(problems, func(p string) bool { return p == "" })
	if len(problems) > 21 {
		problems = problems[:21]
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: folder %q: %s", ErrVerify, name, strings.Join(problems, "; "))
	}
	fr.Verified = true
	return nil
}

// verifyReaders is how many files of one folder are checked at a time.
const verifyReaders = 2

// checkFile returns the verification checksum and size of the file at
// path. The checksum is hash/maphash (AES-based, 64 bits, seeded per
// process), six times the speed of SHA-256 here: it guards the copy
// against lost or mangled bytes, which are not crafted to collide; the
// SHA-256 identities in the journal are computed from the source.
func checkFile(path string) (uint64, int64, error) {
	var h maphash.Hash
	h.SetSeed(checkSeed)
	n, err := mailstore.ChecksumFile(path, &h)
	return h.Sum64(), n, err
}

// writeJournal records the source hashes of a full run (atomically).
func (c *converter) writeJournal(name string, want map[uint32]expect) error {
	f, err := c.store.Folder(name)
	if err != nil {
		return fmt.Errorf("convert: journal for %q: %w", name, err)
	}
	return writeHashes(filepath.Join(f.Dir(), JournalName), want, !c.opts.NoFsync)
}

func writeHashes(path string, want map[uint32]expect, sync bool) error {
	tmp := path + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("convert: journal %s: %w", path, err)
	}
	bw := bufio.NewWriter(out)
	uids := make([]uint32, 0, len(want))
	for u := range want {
		uids = append(uids, u)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	for _, u := range uids {
		s := want[u].sum
		bw.WriteString(hex.EncodeToString(s[:]))
		bw.WriteByte('\n')
	}
	err = bw.Flush()
	if err == nil && sync {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("convert: journal %s: %w", path, err)
	}
	return nil
}

// DeliveredJournal is the file in the Maildir root (INBOX) where `mailmig
// deliver` lists the ContentHash of every message it put on both sides
// during the dual window (migrate.DeliveredJournal).
const DeliveredJournal = "mailmig-delivered"

// readDelivered reads DeliveredJournal (missing = empty).
func readDelivered(path string) (map[string]bool, error) {
	set := map[string]bool{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return set, nil
	}
	if err != nil {
		return nil, fmt.Errorf("convert: %s: %w", path, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			set[line] = true
		}
	}
	return set, nil
}

func readJournal(path string) (map[[32]byte]bool, error) {
	set := map[[32]byte]bool{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return set, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		b, err := hex.DecodeString(strings.TrimSpace(sc.Text()))
		if err != nil || len(b) != 32 {
			continue
		}
		set[[32]byte(b)] = true
	}
	return set, sc.Err()
}

// incremental appends the source messages that are neither in the journal
// of the full run nor (by ContentHash) in the new store; never overwrites.
func (c *converter) incremental(ctx context.Context, s *source, r msgReader, m *mbox.Message, f *mailstore.Folder, fr *FolderReport, sp *spill) error {
	jpath := filepath.Join(f.Dir(), JournalName)
	seen, err := readJournal(jpath)
	if err != nil {
		return fmt.Errorf("convert: journal %s: %w", jpath, err)
	}
	present := c.index
	if !s.inbox {
		// Folders are compared with their own target only.
		present, err = folderIndex(ctx, f)
		if err != nil {
			return err
		}
	}
	// Messages `mailmig deliver` put on both sides during the dual window
	// (ContentHash, one a line, in the Maildir root's DeliveredJournal):
	// if the user deleted one in the new store, it stays deleted.
	var delivered map[string]bool
	if s.inbox {
		delivered, err = readDelivered(filepath.Join(f.Dir(), DeliveredJournal))
		if err != nil {
			return err
		}
	}
	fr.UIDValidity = f.UIDValidity()
	ch := newCountingHash()
	added := map[uint32]expect{}
	// Keywords the folder has already count against the limit.
	var kw keywordSet
	if snap, err := f.Snapshot(ctx); err == nil {
		kw = keywordSet{}
		for _, k := range snap.Keywords {
			if k != "" {
				kw[k] = true
			}
		}
	}
	for m != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		ch.reset()
		nh := NewContentHasher()
		if _, err := sp.fill(r, io.MultiWriter(ch, nh)); err != nil {
			return srcErr(s, r, err)
		}
		sum := ch.sum()
		h := nh.Sum()
		switch {
		case seen[sum]:
			fr.AlreadyPresent++
		case c.takeIndexed(present, h):
			fr.KeptOnce++
		case delivered[h]:
			// Dual-delivered, then deleted by the user in the new store.
			fr.AlreadyPresent++
		default:
			mm := m
			flags := kw.flags(m, func(k string) {
				fr.Skipped = append(fr.Skipped, Skipped{Path: s.path, Offset: mm.Offset, Reason: fmt.Sprintf("keyword %q dropped: a Maildir folder holds at most 26 keywords", k)})
			})
			uid, err := f.Append(ctx, sp.reader(), flags, m.Date)
			if err != nil {
				return fmt.Errorf("convert: append to %q: %w", s.name, err)
			}
			added[uid] = expect{sum: sum, check: ch.check.Sum64(), flags: flagKey(flags), size: ch.n}
			fr.Copied++
			fr.CopiedBytes += ch.n
		}
		fr.Messages++
		fr.Bytes += ch.n
		next, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return srcErr(s, r, err)
		}
		m = next
	}
	if len(added) > 0 {
		if err := appendHashes(jpath, added, !c.opts.NoFsync); err != nil {
			return err
		}
	}
	if !c.opts.NoVerify {
		return c.verify(ctx, s.name, fr.UIDValidity, added, fr)
	}
	return nil
}

func appendHashes(path string, add map[uint32]expect, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("convert: journal %s: %w", path, err)
	}
	var b strings.Builder
	for _, e := range add {
		b.WriteString(hex.EncodeToString(e.sum[:]))
		b.WriteByte('\n')
	}
	_, err = f.WriteString(b.String())
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("convert: journal %s: %w", path, err)
	}
	return nil
}

func folderIndex(ctx context.Context, f *mailstore.Folder) (map[string]int, error) {
	snap, err := f.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("convert: folder %q: %w", f.Name(), err)
	}
	idx := map[string]int{}
	for _, m := range snap.Messages {
		h, err := hashFile(m.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // expunged meanwhile: not in the store
		}
		if err != nil {
			return nil, fmt.Errorf("convert: hash %s: %w", m.Path, err)
		}
		idx[h]++
	}
	return idx, nil
}
