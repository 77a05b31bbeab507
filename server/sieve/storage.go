package sieve

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Storage errors; match with errors.Is.
var (
	ErrNoSuchScript   = errors.New("sieve: no such script")
	ErrScriptExists   = errors.New("sieve: script exists")
	ErrActiveScript   = errors.New("sieve: script is active")
	ErrInvalidName    = errors.New("sieve: invalid script name")
	ErrScriptTooBig   = errors.New("sieve: script too big")
	ErrTooManyScripts = errors.New("sieve: too many scripts")
)

// Suffix is the file name suffix of stored scripts.
const Suffix = ".sieve"

// Storage is one user's scripts, laid out as dovecot/pigeonhole does:
// Dir/NAME.sieve, with the active script a symbolic link ActiveLink
// (~/.dovecot.sieve) pointing at it (relative when possible). A regular
// file at ActiveLink (written by hand) is the active script too; SetActive
// moves it into Dir as "dovecot.orig" first, as pigeonhole does.
//
// Writes go to a temporary file in Dir, fsynced, then renamed. Methods
// are safe for concurrent use within one process.
type Storage struct {
	// Dir holds the scripts (~/sieve); created on first write.
	Dir string
	// ActiveLink is the active script link (~/.dovecot.sieve).
	ActiveLink string
	// MaxScriptSize bounds a script in bytes (0 = no limit).
	MaxScriptSize int64
	// MaxScripts bounds the number of scripts (0 = no limit).
	MaxScripts int
	// GlobalDir is the site's global script directory, for checking
	// `include :global` at upload ("" = only GlobalSpam exists).
	GlobalDir string

	mu sync.Mutex
}

// ScriptInfo describes a stored script.
type ScriptInfo struct {
	Name   string
	Size   int64
	Active bool
}

// CheckName validates a script name (RFC 5804 §1.6 plus what a file name
// allows): 1..128 characters of UTF-8, no control characters, no '/',
// not starting with '.'.
func CheckName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 128 || !utf8.ValidString(name) ||
		strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return fmt.Errorf("%w: %q", ErrInvalidName, name)
		}
	}
	return nil
}

func (s *Storage) path(name string) string { return filepath.Join(s.Dir, name+Suffix) }

// activeName returns the active script's name, "" for none; isFile is true
// when ActiveLink is a regular file rather than a link.
func (s *Storage) activeName() (name string, isFile bool, err error) {
	fi, err := os.Lstat(s.ActiveLink)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("sieve: stat %s: %w", s.ActiveLink, err)
	}
	if fi.Mode().IsRegular() {
		return "", true, nil
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return "", false, nil
	}
	target, err := os.Readlink(s.ActiveLink)
	if err != nil {
		return "", false, fmt.Errorf("sieve: readlink %s: %w", s.ActiveLink, err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(s.ActiveLink), target)
	}
	dir, file := filepath.Split(filepath.Clean(target))
	if filepath.Clean(dir) != filepath.Clean(s.Dir) || !strings.HasSuffix(file, Suffix) {
		return "", false, nil // points outside the storage: not ours
	}
	return strings.TrimSuffix(file, Suffix), false, nil
}

// Active returns the active script's name ("" when none is active or the
// active script is a plain file) and its content (nil when none).
func (s *Storage) Active() (name string, content []byte, err error) {
	name, isFile, err := s.activeName()
	if err != nil {
		return "", nil, err
	}
	if name == "" && !isFile {
		return "", nil, nil
	}
	p := s.ActiveLink
	if name != "" {
		p = s.path(name)
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil // dangling link: no active script
	}
	if err != nil {
		return "", nil, fmt.Errorf("sieve: read %s: %w", p, err)
	}
	return name, b, nil
}

// ActivePath returns the file holding the active script ("" for none),
// for callers that cache compiled scripts by file identity.
func (s *Storage) ActivePath() (string, error) {
	name, isFile, err := s.activeName()
	switch {
	case err != nil:
		return "", err
	case name != "":
		return s.path(name), nil
	case isFile:
		return s.ActiveLink, nil
	}
	return "", nil
}

// List returns the stored scripts sorted by name.
func (s *Storage) List() ([]ScriptInfo, error) {
	active, _, err := s.activeName()
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sieve: list %s: %w", s.Dir, err)
	}
	var out []ScriptInfo
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, Suffix) || strings.HasPrefix(n, ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		name := strings.TrimSuffix(n, Suffix)
		out = append(out, ScriptInfo{Name: name, Size: fi.Size(), Active: name == active})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns a script's content.
func (s *Storage) Get(name string) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchScript, name)
	}
	if err != nil {
		return nil, fmt.Errorf("sieve: read %s: %w", s.path(name), err)
	}
	return b, nil
}

// HaveSpace checks the limits for storing size bytes under name
// (ManageSieve HAVESPACE, RFC 5804 §2.5).
func (s *Storage) HaveSpace(name string, size int64) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if s.MaxScriptSize > 0 && size > s.MaxScriptSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrScriptTooBig, size, s.MaxScriptSize)
	}
	if s.MaxScripts > 0 {
		if _, err := os.Stat(s.path(name)); err == nil {
			return nil // replacing does not add a script
		}
		list, err := s.List()
		if err != nil {
			return err
		}
		if len(list) >= s.MaxScripts {
			return fmt.Errorf("%w: limit %d", ErrTooManyScripts, s.MaxScripts)
		}
	}
	return nil
}

// Put validates content (a *ScriptError when it does not compile),
// checks the limits and stores it under name, replacing any script of
// that name atomically.
func (s *Storage) Put(name string, content []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.HaveSpace(name, int64(len(content))); err != nil {
		return err
	}
	if err := s.Validate(content); err != nil {
		return err
	}
	return s.writeFile(s.path(name), content)
}

// GlobalSpam is the global script that always exists: the site's spam
// rule, `include :global "spam"` (the file in the global directory, or
// delivery's built-in rule).
const GlobalSpam = "spam"

// Validate compiles content as sievec would for this user: includes
// must exist (personal ones in Dir, global ones in GlobalDir) and compile
// (RFC 6609 §3.2). ManageSieve's CHECKSCRIPT and PUTSCRIPT use it.
func (s *Storage) Validate(content []byte) error {
	_, err := Compile(content, Options{Include: s.includeText})
	return err
}

func (s *Storage) includeText(global bool, name string) ([]byte, error) {
	dir := s.Dir
	if global {
		dir = s.GlobalDir
	}
	if dir == "" {
		if global && name == GlobalSpam {
			return []byte("keep;"), nil
		}
		return nil, fs.ErrNotExist
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".sieve"))
	if errors.Is(err, fs.ErrNotExist) && global && name == GlobalSpam {
		return []byte("keep;"), nil // delivery's built-in rule stands in
	}
	return b, err
}

func (s *Storage) writeFile(dst string, content []byte) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("sieve: create %s: %w", s.Dir, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.Dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sieve: create %s: %w", tmp, err)
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("sieve: write %s: %w", dst, err)
	}
	return syncDir(s.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sieve: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sieve: sync %s: %w", dir, err)
	}
	return nil
}

// Delete removes a script; the active one can not be deleted
// (RFC 5804 §2.10).
func (s *Storage) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := CheckName(name); err != nil {
		return err
	}
	active, _, err := s.activeName()
	if err != nil {
		return err
	}
	if active == name {
		return fmt.Errorf("%w: %q", ErrActiveScript, name)
	}
	if err := os.Remove(s.path(name)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNoSuchScript, name)
	} else if err != nil {
		return fmt.Errorf("sieve: delete %s: %w", s.path(name), err)
	}
	return nil
}

// Rename renames a script; the active link follows (RFC 5804 §2.11.1).
func (s *Storage) Rename(oldName, newName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := CheckName(oldName); err != nil {
		return err
	}
	if err := CheckName(newName); err != nil {
		return err
	}
	if _, err := os.Stat(s.path(oldName)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNoSuchScript, oldName)
	}
	if _, err := os.Stat(s.path(newName)); err == nil {
		return fmt.Errorf("%w: %q", ErrScriptExists, newName)
	}
	active, _, err := s.activeName()
	if err != nil {
		return err
	}
	// link(2) then unlink(2): fails instead of replacing a script created
	// meanwhile by another process.
	if err := os.Link(s.path(oldName), s.path(newName)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %q", ErrScriptExists, newName)
		}
		return fmt.Errorf("sieve: rename %s: %w", oldName, err)
	}
	if active == oldName {
		if err := s.link(newName); err != nil {
			_ = os.Remove(s.path(newName))
			return err
		}
	}
	if err := os.Remove(s.path(oldName)); err != nil {
		return fmt.Errorf("sieve: rename %s: %w", oldName, err)
	}
	return syncDir(s.Dir)
}

// SetActive makes name the active script; "" deactivates
// (RFC 5804 §2.8).
func (s *Storage) SetActive(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, isFile, err := s.activeName()
	if err != nil {
		return err
	}
	if isFile {
		// Keep a hand-written ~/.dovecot.sieve as a stored script.
		b, err := os.ReadFile(s.ActiveLink)
		if err != nil {
			return fmt.Errorf("sieve: read %s: %w", s.ActiveLink, err)
		}
		if err := s.writeFile(s.path("dovecot.orig"), b); err != nil {
			return err
		}
	}
	if name == "" {
		if err := os.Remove(s.ActiveLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sieve: deactivate %s: %w", s.ActiveLink, err)
		}
		return nil
	}
	if err := CheckName(name); err != nil {
		return err
	}
	if _, err := os.Stat(s.path(name)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNoSuchScript, name)
	}
	return s.link(name)
}

// link points ActiveLink at name atomically (symlink to a temporary name,
// then rename over the link).
func (s *Storage) link(name string) error {
	target := s.path(name)
	if rel, err := filepath.Rel(filepath.Dir(s.ActiveLink), target); err == nil && !strings.HasPrefix(rel, "..") {
		target = rel
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := s.ActiveLink + ".tmp-" + hex.EncodeToString(rnd[:])
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("sieve: link %s: %w", s.ActiveLink, err)
	}
	if err := os.Rename(tmp, s.ActiveLink); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("sieve: link %s: %w", s.ActiveLink, err)
	}
	return nil
}
