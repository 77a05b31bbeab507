package mailstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maildirsizeMax is the size past which maildirsize is recomputed
// (Maildir++ quota spec and dovecot: 5120 bytes).
const maildirsizeMax = 5120

// FolderUsage is the size of one folder.
type FolderUsage struct {
	Name     string
	Bytes    int64
	Messages int64
}

func (s *Store) quotaEnabled() bool { return s.opts.QuotaBytes > 0 || s.opts.QuotaMessages > 0 }

// quotaHeader is maildirsize's first line for the configured limits.
func (s *Store) quotaHeader() string {
	var parts []string
	if s.opts.QuotaBytes > 0 {
		parts = append(parts, strconv.FormatInt(s.opts.QuotaBytes, 10)+"S")
	}
	if s.opts.QuotaMessages > 0 {
		parts = append(parts, strconv.FormatInt(s.opts.QuotaMessages, 10)+"C")
	}
	if len(parts) == 0 {
		return "0S"
	}
	return strings.Join(parts, ",")
}

// parseMaildirsize parses a maildirsize file: the definition line
// ("NS,MC") and "BYTES COUNT" lines, summed. A partial last line is
// ignored.
func parseMaildirsize(data []byte) (def string, bytesUsed, count int64, err error) {
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		return "", 0, 0, fmt.Errorf("maildirsize: no complete line")
	}
	lines := strings.Split(string(data[:end]), "\n")
	def = lines[0]
	off := len(lines[0]) + 1
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 2 {
			return "", 0, 0, fmt.Errorf("maildirsize at byte %d: want 2 fields in %q", off, l)
		}
		b, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return "", 0, 0, fmt.Errorf("maildirsize at byte %d: bad numbers %q", off, l)
		}
		bytesUsed += b
		count += c
		off += len(l) + 1
	}
	return def, bytesUsed, count, nil
}

// readQuota returns the usage recorded in maildirsize, ok=false when it
// must be recomputed (missing, too big, other limits, negative, broken).
func (s *Store) readQuota() (int64, int64, bool) {
	path := filepath.Join(s.root, "maildirsize")
	data, err := readFile(path)
	if err != nil || len(data) > maildirsizeMax {
		return 0, 0, false
	}
	def, b, c, err := parseMaildirsize(data)
	if err != nil || def != s.quotaHeader() || b < 0 || c < 0 {
		return 0, 0, false
	}
	return b, c, true
}

// Usage returns the bytes and messages of the whole tree: from
// maildirsize when a quota is configured (recomputed when missing, too
// big or stale), else from a scan.
func (s *Store) Usage() (bytesUsed, messages int64, err error) {
	if !s.quotaEnabled() {
		return s.scanUsage()
	}
	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	if b, c, ok := s.readQuota(); ok {
		return b, c, nil
	}
	return s.recalcLocked()
}

func (s *Store) scanUsage() (int64, int64, error) {
	us, err := s.FolderUsages()
	if err != nil {
		return 0, 0, err
	}
	var b, c int64
	for _, u := range us {
		b += u.Bytes
		c += u.Messages
	}
	return b, c, nil
}

// RecalcQuota rewrites maildirsize from a full scan. Without configured
// limits it only refreshes an existing file, keeping its limits line.
func (s *Store) RecalcQuota() error {
	if !s.quotaEnabled() {
		if _, err := os.Stat(filepath.Join(s.root, "maildirsize")); err != nil {
			return nil
		}
	}
	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	_, _, err := s.recalcLocked()
	return err
}

func (s *Store) recalcLocked() (int64, int64, error) {
	path := filepath.Join(s.root, "maildirsize")
	lk, err := acquireLock(context.Background(), path, s.opts.LockTimeout, s.host, !s.opts.NoFsync)
	if err != nil {
		return 0, 0, err
	}
	defer lk.release()
	b, c, err := s.scanUsage()
	if err != nil {
		return 0, 0, err
	}
	header := s.quotaHeader()
	if !s.quotaEnabled() {
		// Keep the limits whoever configured them wrote.
		if old, err := readFile(path); err == nil {
			if def, _, _, err := parseMaildirsize(old); err == nil && def != "" {
				header = def
			}
		}
	}
	data := fmt.Sprintf("%s\n%d %d\n", header, b, c)
	if err := lk.replace([]byte(data)); err != nil {
		return 0, 0, err
	}
	return b, c, nil
}

// quotaCheck returns ErrOverQuota if adding size bytes in n messages
// would exceed the limits.
func (s *Store) quotaCheck(size, n int64) error {
	if !s.quotaEnabled() {
		return nil
	}
	b, c, err := s.Usage()
	if err != nil {
		return fmt.Errorf("quota check: %w", err)
	}
	if s.opts.QuotaBytes > 0 && b+size > s.opts.QuotaBytes {
		return fmt.Errorf("%w: %d + %d bytes > %d", ErrOverQuota, b, size, s.opts.QuotaBytes)
	}
	if s.opts.QuotaMessages > 0 && c+n > s.opts.QuotaMessages {
		return fmt.Errorf("%w: %d + %d messages > %d", ErrOverQuota, c, n, s.opts.QuotaMessages)
	}
	return nil
}

// quotaAdd appends a delta line to maildirsize (one write, O_APPEND, as
// the Maildir++ spec asks); a missing or oversized file is recomputed.
//
// A Store opened without limits (the converter, the cutover pass) still
// keeps an existing maildirsize right: the file belongs to the user's
// store, not to this process, and a stale one makes the quota that IMAP,
// delivery and `mailmig quota` read drift (issue 9 item 7).
func (s *Store) quotaAdd(size, n int64) {
	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	path := filepath.Join(s.root, "maildirsize")
	fh, err := openFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if !s.quotaEnabled() && err != nil {
		return // no file to keep, no limits to record
	}
	if err == nil {
		_, err = fmt.Fprintf(fh, "%d %d\n", size, n)
		st, serr := fh.Stat()
		fh.Close()
		if err == nil && serr == nil && st.Size() <= maildirsizeMax {
			return
		}
	}
	if _, _, err := s.recalcLocked(); err != nil {
		s.log.Warn("quota recalculation failed", "err", err)
	}
}

// FolderUsages scans every folder and returns its size (for mailmig
// quota), INBOX first.
func (s *Store) FolderUsages() ([]FolderUsage, error) {
	fs, err := s.Folders()
	if err != nil {
		return nil, err
	}
	out := make([]FolderUsage, 0, len(fs))
	for _, fi := range fs {
		dir := filepath.Join(s.root, fi.Dir)
		u := FolderUsage{Name: fi.Name}
		for _, sub := range []string{"cur", "new"} {
			d := filepath.Join(dir, sub)
			names, err := readNames(d)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if n == "" || n[0] == '.' {
					continue
				}
				size, _, _ := sizesFromKey(keyOf(n))
				if size < 0 {
					st, err := os.Lstat(filepath.Join(d, n))
					if err != nil {
						continue
					}
					size = st.Size()
				}
				u.Bytes += size
				u.Messages++
			}
		}
		out = append(out, u)
	}
	return out, nil
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return names, nil
}
