package mailstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"mailmig/mailstore/mutf7"
)

// makeMaildir creates dir with cur/, new/, tmp/ and, for folders, the
// empty maildirfolder file.
func (s *Store) makeMaildir(dir string, folder bool) error {
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if folder {
		p := filepath.Join(dir, "maildirfolder")
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		fh.Close()
	}
	if !s.opts.NoFsync {
		if err := syncDir(dir); err != nil {
			return err
		}
		return syncDir(filepath.Dir(dir))
	}
	return nil
}

func (s *Store) dirOf(name string) (string, string, error) {
	rel, err := EncodeFolderName(name)
	if err != nil {
		return "", "", err
	}
	name = normalizeName(name)
	if parts, _ := splitName(name); len(parts) > 0 {
		name = strings.Join(parts, "/")
	}
	return filepath.Join(s.root, rel), name, nil
}

// Folders lists every folder of the tree, INBOX first, then by name.
// Directories whose names do not decode are skipped with a warning.
func (s *Store) Folders() ([]FolderInfo, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.root, err)
	}
	subs, err := s.Subscriptions()
	if err != nil {
		return nil, err
	}
	subscribed := map[string]bool{}
	for _, n := range subs {
		subscribed[n] = true
	}
	out := []FolderInfo{{Name: "INBOX", Subscribed: subscribed["INBOX"]}}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, ".") || strings.HasPrefix(n, "..") || !e.IsDir() {
			continue
		}
		name, err := DecodeFolderName(n)
		if err != nil {
			s.log.Warn("skipping folder directory", "dir", n, "err", err)
			continue
		}
		out = append(out, FolderInfo{Name: name, Dir: n, Subscribed: subscribed[name], SpecialUse: DefaultSpecialUse(name, "junk")})
	}
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].Name < out[1+j].Name })
	return out, nil
}

// CreateFolder creates folder name (IMAP form, '/' separated) with its
// cur/new/tmp, maildirfolder file and a dovecot-uidlist with a fresh
// UIDVALIDITY. Missing parents are not created (Maildir++ does not need
// them). ErrFolderExists if it exists.
func (s *Store) CreateFolder(name string) error {
	dir, name, err := s.dirOf(name)
	if err != nil {
		return err
	}
	if dir == s.root {
		return fmt.Errorf("create INBOX: %w", ErrFolderExists)
	}
	if err := s.createFolderDir(name); err != nil {
		return err
	}
	_, err = s.Folder(name)
	s.hub.publishList(s.root, Change{Kind: ChangeFolderCreated, Folder: name})
	return err
}

// DeleteFolder removes folder name with all its messages. Children stay
// (Maildir++ folders are independent directories). INBOX cannot be
// deleted (ErrInboxOp). The directory is first renamed away, so a crash
// leaves no half-deleted folder visible.
func (s *Store) DeleteFolder(name string) error {
	dir, name, err := s.dirOf(name)
	if err != nil {
		return err
	}
	if dir == s.root {
		return fmt.Errorf("delete INBOX: %w", ErrInboxOp)
	}
	trash := filepath.Join(s.root, "..mailmig-deleted-"+s.newKey(s.now()))
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", name, ErrNoSuchFolder)
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	s.forgetFolder(dir)
	s.hub.Publish(s.root, Change{Kind: ChangeFolderDeleted, Folder: name})
	s.hub.publishList(s.root, Change{Kind: ChangeFolderDeleted, Folder: name})
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("delete %s: remove %s: %w", name, trash, err)
	}
	if s.quotaEnabled() {
		if err := s.RecalcQuota(); err != nil {
			s.log.Warn("quota recalculation failed", "err", err)
		}
	}
	return nil
}

func (s *Store) forgetFolder(dir string) {
	s.hub.forget(dir)
	s.mu.Lock()
	for n, f := range s.folders {
		if f.dir == dir || strings.HasPrefix(f.dir, dir+".") {
			delete(s.folders, n)
		}
	}
	s.mu.Unlock()
}

// RenameFolder renames folder oldName and its children to newName (IMAP
// RENAME). Renaming INBOX is not supported (ErrInboxOp). Subscriptions
// stay under the old names, as dovecot keeps them (RFC 9051 §6.3.9
// leaves it open). UIDs and UIDVALIDITY are kept.
func (s *Store) RenameFolder(oldName, newName string) error {
	oldDir, oldName, err := s.dirOf(oldName)
	if err != nil {
		return err
	}
	newDir, newName, err := s.dirOf(newName)
	if err != nil {
		return err
	}
	if oldDir == s.root || newDir == s.root {
		return fmt.Errorf("rename %s to %s: %w", oldName, newName, ErrInboxOp)
	}
	// A hierarchy level that is no folder of its own (lists in
	// lists/debian/devel) renames its children, as dovecot does.
	_, statErr := os.Stat(oldDir)
	if _, err := os.Lstat(newDir); err == nil {
		return fmt.Errorf("rename %s to %s: %w", oldName, newName, ErrFolderExists)
	}
	if strings.HasPrefix(newDir, oldDir+".") {
		return fmt.Errorf("rename %s into itself (%s): %w", oldName, newName, ErrInvalidFolderName)
	}
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("rename %s: %w", oldName, err)
	}
	oldBase, newBase := filepath.Base(oldDir), filepath.Base(newDir)
	type mv struct{ from, to, fromName, toName string }
	var moves []mv
	for _, e := range ents {
		n := e.Name()
		if n != oldBase && !strings.HasPrefix(n, oldBase+".") {
			continue
		}
		to := newBase + n[len(oldBase):]
		fromName, err1 := DecodeFolderName(n)
		toName, err2 := DecodeFolderName(to)
		if err1 != nil || err2 != nil {
			continue
		}
		if _, err := os.Lstat(filepath.Join(s.root, to)); err == nil {
			return fmt.Errorf("rename %s to %s: %s: %w", oldName, newName, toName, ErrFolderExists)
		}
		moves = append(moves, mv{n, to, fromName, toName})
	}
	if statErr != nil && len(moves) == 0 {
		return fmt.Errorf("rename %s: %w", oldName, ErrNoSuchFolder)
	}
	for _, m := range moves {
		if err := os.Rename(filepath.Join(s.root, m.from), filepath.Join(s.root, m.to)); err != nil {
			return fmt.Errorf("rename %s to %s: %w", m.fromName, m.toName, err)
		}
		s.forgetFolder(filepath.Join(s.root, m.from))
		s.hub.Publish(s.root, Change{Kind: ChangeFolderDeleted, Folder: m.fromName})
		s.hub.publishList(s.root, Change{Kind: ChangeFolderRenamed, Folder: m.toName, OldFolder: m.fromName})
	}
	if !s.opts.NoFsync {
		return syncDir(s.root)
	}
	return nil
}

// Folder returns the folder with IMAP name name ("INBOX" case-insensitive
// for the root), synced once (creating dovecot-uidlist if missing). The
// returned *Folder is shared by all callers of this Store.
// ErrNoSuchFolder if it does not exist.
func (s *Store) Folder(name string) (*Folder, error) {
	dir, name, err := s.dirOf(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	f := s.folders[name]
	s.mu.Unlock()
	if f != nil {
		if _, err := os.Stat(filepath.Join(dir, "cur")); err == nil {
			return f, nil
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cur")); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("folder %s: %w", name, err)
		}
		if dir != s.root {
			return nil, fmt.Errorf("folder %s: %w", name, ErrNoSuchFolder)
		}
		// INBOX always exists: create its directories on first use.
		if err := s.makeMaildir(dir, false); err != nil {
			return nil, err
		}
	} else if !isDir(filepath.Join(dir, "new")) || !isDir(filepath.Join(dir, "tmp")) {
		// Half made (by a process killed while creating it, or by a
		// tool that makes cur/ only): complete it.
		if err := s.makeMaildir(dir, dir != s.root); err != nil {
			return nil, err
		}
	}
	f = &Folder{store: s, name: name, dir: dir, st: s.hub.state(dir)}
	if _, err := f.Snapshot(context.Background()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.folders[name] = f
	s.mu.Unlock()
	return f, nil
}

// Subscriptions returns the subscribed folder names (IMAP form), in file
// order. Names need not exist as folders.
func (s *Store) Subscriptions() ([]string, error) {
	path := filepath.Join(s.root, "subscriptions")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return parseSubscriptions(data), nil
}

// parseSubscriptions reads dovecot's subscriptions file: version 2 is
// "V\t2\n\n" then one name per line, hierarchy levels separated by TAB,
// each level in modified UTF-7; without the header (version 1) a line is
// a name as given. Undecodable levels are kept as they are.
func parseSubscriptions(data []byte) []string {
	lines := strings.Split(string(data), "\n")
	v2 := len(lines) > 0 && strings.HasPrefix(lines[0], "V\t")
	if v2 {
		lines = lines[1:]
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			continue
		}
		var name string
		if v2 {
			parts := strings.Split(l, "\t")
			for i, p := range parts {
				if d, err := mutf7.Decode(p); err == nil {
					parts[i] = d
				}
			}
			name = strings.Join(parts, "/")
		} else {
			name = l
		}
		name = normalizeName(name)
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

func formatSubscriptions(names []string) []byte {
	var b bytes.Buffer
	b.WriteString("V\t2\n\n")
	seen := map[string]bool{}
	for _, n := range names {
		n = normalizeName(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		parts := strings.Split(n, "/")
		for i, p := range parts {
			parts[i] = mutf7.Encode(p)
		}
		b.WriteString(strings.Join(parts, "\t"))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// editSubscriptions changes the subscriptions file under its dot-lock.
func (s *Store) editSubscriptions(edit func([]string) []string) error {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	path := filepath.Join(s.root, "subscriptions")
	lk, err := acquireLock(context.Background(), path, s.opts.LockTimeout, s.host, !s.opts.NoFsync)
	if err != nil {
		return err
	}
	defer lk.release()
	cur, err := s.Subscriptions()
	if err != nil {
		return err
	}
	return lk.replace(formatSubscriptions(edit(cur)))
}

// Subscribe adds name to the subscriptions file (dovecot's format).
func (s *Store) Subscribe(name string) error {
	if _, err := splitName(name); err != nil {
		return err
	}
	name = normalizeName(name)
	changed := false
	err := s.editSubscriptions(func(cur []string) []string {
		if hasExact(cur, name) {
			return cur
		}
		changed = true
		return append(cur, name)
	})
	if err == nil && changed {
		s.hub.publishList(s.root, Change{Kind: ChangeSubscribed, Folder: name})
	}
	return err
}

// Unsubscribe removes name from the subscriptions file.
func (s *Store) Unsubscribe(name string) error {
	name = normalizeName(name)
	changed := false
	err := s.editSubscriptions(func(cur []string) []string {
		out := cur[:0]
		for _, c := range cur {
			if c != name {
				out = append(out, c)
			} else {
				changed = true
			}
		}
		return out
	})
	if err == nil && changed {
		s.hub.publishList(s.root, Change{Kind: ChangeUnsubscribed, Folder: name})
	}
	return err
}

// SetSubscriptions replaces the subscriptions file with names (for the
// converter). Invalid names give ErrInvalidFolderName.
func (s *Store) SetSubscriptions(names []string) error {
	for _, n := range names {
		if _, err := splitName(n); err != nil {
			return err
		}
	}
	return s.editSubscriptions(func([]string) []string { return names })
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// createFolderDir creates folder name's directory complete, atomically:
// built in the root's tmp/ ("tmp/mailmig-new-*", same file system, where
// dovecot does not look for folders: a "..x" directory left by a kill -9
// is listed by dovecot as an invalid folder and makes doveadm fail), then
// renamed into place, so a concurrent delivery never sees a folder without
// cur/new/tmp. No uidlist yet (the Importer writes its own).
func (s *Store) createFolderDir(name string) error {
	dir, name, err := s.dirOf(name)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("create %s: %w", name, ErrFolderExists)
	}
	tmp := filepath.Join(s.root, "tmp", "mailmig-new-"+s.newKey(s.now()))
	// Mkdir, not MkdirAll: the build directory must be ours alone.
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := s.makeMaildir(tmp, true); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return fmt.Errorf("create %s: %w", name, ErrFolderExists)
		}
		return fmt.Errorf("create %s: %w", name, err)
	}
	if !s.opts.NoFsync {
		if err := syncDir(s.root); err != nil {
			return err
		}
	}
	s.hub.forget(dir)
	return nil
}
