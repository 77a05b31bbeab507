package convert

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mailmig/migrate/mbox"
	"mailmig/migrate/mix"
)

// source is one mbox file to convert.
type source struct {
	path    string // absolute
	rel     string // below FoldersDir, '/' separated; "INBOX" for the spool
	inbox   bool
	gz      bool
	size    int64
	mtime   time.Time
	format  mbox.Format // as sniffed (mbox.MBX selects migrate/mbx)
	oldName string
	name    string
	ren     *Renaming
}

// plan is what a run will do.
type plan struct {
	inbox   *source
	folders []*source
	skipped []Skipped
	unread  []Skipped // could not be read: never a silent skip
	subs    []string  // new names, deduplicated, in file order
	subRens []Renaming
	renames []Renaming
	names   *nameMapper
	byRel   map[string]string // source rel (without .gz) -> new name
}

// maxDepth bounds the folder tree walk (symlink loops are refused anyway).
const maxDepth = 64

func makePlan(opts Options) (*plan, error) {
	nm, err := newNameMapper(opts.Charset)
	if err != nil {
		return nil, err
	}
	p := &plan{names: nm, byRel: map[string]string{}}
	if opts.Inbox != "" {
		st, err := os.Stat(opts.Inbox)
		switch {
		case err == nil && st.Mode().IsRegular():
			p.inbox = &source{path: opts.Inbox, rel: "INBOX", inbox: true, size: st.Size(), mtime: st.ModTime(), oldName: "INBOX", name: "INBOX"}
			p.inbox.format = sniffFormat(p.inbox) // UW-IMAP sites kept shared INBOXes in mbx
		case err == nil:
			p.unread = append(p.unread, Skipped{Path: opts.Inbox, Reason: "INBOX spool is " + fileKind(st.Mode()) + ", not a regular file"})
		case errors.Is(err, fs.ErrNotExist):
			// No spool: nothing to copy for INBOX.
		default:
			p.unread = append(p.unread, Skipped{Path: opts.Inbox, Reason: "cannot read the INBOX spool: " + errReason(err)})
		}
	}
	if opts.FoldersDir != "" {
		root, err := filepath.Abs(opts.FoldersDir)
		if err != nil {
			return nil, fmt.Errorf("convert: folders %s: %w", opts.FoldersDir, err)
		}
		if st, err := os.Stat(root); err == nil && st.IsDir() {
			realRoot, err := filepath.EvalSymlinks(root)
			if err != nil {
				return nil, fmt.Errorf("convert: folders %s: %w", root, err)
			}
			if err := p.walk(realRoot, root, "", 0); err != nil {
				return nil, err
			}
		} else if err == nil {
			p.unread = append(p.unread, Skipped{Path: root, Reason: "folders directory is " + fileKind(st.Mode()) + ", not a directory"})
		} else if !errors.Is(err, fs.ErrNotExist) {
			p.unread = append(p.unread, Skipped{Path: root, Reason: "cannot read the folders directory: " + errReason(err)})
		}
	}
	sort.Slice(p.folders, func(i, j int) bool { return p.folders[i].rel < p.folders[j].rel })
	for _, s := range p.folders {
		s.oldName, s.name, s.ren = nm.mapName(s.rel)
		p.byRel[strings.TrimSuffix(s.rel, ".gz")] = s.name
		if s.ren != nil {
			p.renames = append(p.renames, *s.ren)
		}
	}
	if opts.Subscriptions != "" {
		if err := p.readSubscriptions(opts.Subscriptions, opts.FoldersDir); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// walk lists the mbox files below dir (rel is its path below the root).
func (p *plan) walk(realRoot, dir, rel string, depth int) error {
	if depth > maxDepth {
		p.skipped = append(p.skipped, Skipped{Path: dir, Reason: "folder tree too deep"})
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		p.unread = append(p.unread, Skipped{Path: dir, Reason: "cannot list directory: " + errReason(err)})
		return nil
	}
	isMix := rel != "" && mix.IsMix(dir)
	if isMix {
		// A mix folder (a directory of c-client's mix driver); it may
		// hold child folders too.
		var size int64
		var mtime time.Time
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".mix") {
				if st, err := e.Info(); err == nil {
					size += st.Size()
					if st.ModTime().After(mtime) {
						mtime = st.ModTime()
					}
				}
			}
		}
		p.folders = append(p.folders, &source{path: dir, rel: rel, size: size, mtime: mtime, format: mbox.MIX})
	}
	for _, e := range ents {
		name := e.Name()
		full := filepath.Join(dir, name)
		if isMix && strings.HasPrefix(name, ".mix") {
			continue // the mix folder's own files
		}
		r := name
		if rel != "" {
			r = rel + "/" + name
		}
		st, err := os.Lstat(full)
		if err != nil {
			p.unread = append(p.unread, Skipped{Path: full, Reason: "cannot read: " + errReason(err)})
			continue
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(full)
			if err != nil {
				p.skipped = append(p.skipped, Skipped{Path: full, Reason: "dangling symlink"})
				continue
			}
			if !within(realRoot, target) {
				p.skipped = append(p.skipped, Skipped{Path: full, Reason: "symlink leaves the folder tree (refused)"})
				continue
			}
			if st, err = os.Stat(full); err != nil || st.IsDir() {
				p.skipped = append(p.skipped, Skipped{Path: full, Reason: "symlink to a directory (refused: loops)"})
				continue
			}
		}
		switch {
		case st.IsDir():
			if err := p.walk(realRoot, full, r, depth+1); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			if strings.HasSuffix(name, ".lock") && st.Size() < 64 {
				p.skipped = append(p.skipped, Skipped{Path: full, Reason: "lock file"})
				continue
			}
			src := &source{path: full, rel: r, gz: strings.HasSuffix(name, ".gz"), size: st.Size(), mtime: st.ModTime()}
			f, ok := sniff(src)
			if ok {
				src.format = f
			}
			if ok && f == mbox.NotMail {
				// A text file among the folders (notes, a signature, a
				// saved draft): c-client would not open it as a mailbox.
				p.skipped = append(p.skipped, Skipped{Path: full, Reason: NotMailFolder})
				continue
			}
			p.folders = append(p.folders, src)
		default:
			p.skipped = append(p.skipped, Skipped{Path: full, Reason: "not a regular file"})
		}
	}
	return nil
}

// errReason is err without the path an *fs.PathError repeats
// ("permission denied").
func errReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// fileKind names a file type for a message ("a named pipe (FIFO)").
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}

func within(root, target string) bool {
	rel, err := filepath.Rel(root, target)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// readSubscriptions maps ~/.mailboxlist to new names. Entries are
// relative to the home directory, usually with the folders directory's
// name as prefix ("mail/foo"); that prefix is removed. Entries for
// folders that don't exist are kept (mapped the same way), as dovecot
// keeps them; names that leave the tree are refused.
func (p *plan) readSubscriptions(file, foldersDir string) error {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		p.unread = append(p.unread, Skipped{Path: file, Reason: "cannot read the subscription list: " + errReason(err)})
		return nil
	}
	defer f.Close()
	prefix := ""
	if foldersDir != "" {
		prefix = filepath.Base(filepath.Clean(foldersDir)) + "/"
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		raw := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(raw) == "" {
			continue
		}
		name := raw
		if strings.EqualFold(name, "INBOX") {
			name = "INBOX"
		} else {
			name = strings.TrimPrefix(name, "~/")
			if prefix != "" && strings.HasPrefix(name, prefix) {
				name = strings.TrimPrefix(name, prefix)
			}
			if foldersDir != "" {
				if abs, err := filepath.Abs(foldersDir); err == nil && strings.HasPrefix(name, abs+"/") {
					name = strings.TrimPrefix(name, abs+"/")
				}
			}
			clean, err := safeRel(name)
			if err != nil {
				p.skipped = append(p.skipped, Skipped{Path: fmt.Sprintf("%s:%d", file, line), Reason: "subscription refused: " + err.Error()})
				continue
			}
			name = clean
			if n, ok := p.byRel[name]; ok {
				name = n
			} else {
				old, proposed, reasons := p.names.plan(name)
				if proposed != old {
					p.subRens = append(p.subRens, Renaming{Old: old, New: proposed, Reason: "subscription to a missing folder: " + strings.Join(uniq(reasons), ", ")})
				}
				name = proposed
			}
		}
		if !seen[name] {
			seen[name] = true
			p.subs = append(p.subs, name)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("convert: subscriptions %s line %d: %w", file, line+1, err)
	}
	return nil
}
