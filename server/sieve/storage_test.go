package sieve

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newStorage(t *testing.T) *Storage {
	t.Helper()
	home := t.TempDir()
	return &Storage{Dir: filepath.Join(home, "sieve"), ActiveLink: filepath.Join(home, ".dovecot.sieve"), MaxScriptSize: 1000, MaxScripts: 3}
}

func names(t *testing.T, s *Storage) string {
	t.Helper()
	l, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range l {
		n := i.Name
		if i.Active {
			n += "*"
		}
		out = append(out, n)
	}
	return strings.Join(out, ",")
}

func TestStorageLifecycle(t *testing.T) {
	s := newStorage(t)
	if got := names(t, s); got != "" {
		t.Fatalf("empty storage lists %q", got)
	}
	if name, b, err := s.Active(); err != nil || name != "" || b != nil {
		t.Fatalf("Active on empty: %q %q %v", name, b, err)
	}
	if err := s.Put("main", []byte(`keep;`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("spam", []byte(`require "fileinto"; fileinto "junk";`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive("main"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); got != "main*,spam" {
		t.Fatalf("list %q", got)
	}
	// The link is relative, as pigeonhole writes it.
	if target, err := os.Readlink(s.ActiveLink); err != nil || target != "sieve/main.sieve" {
		t.Fatalf("link %q %v", target, err)
	}
	if name, b, err := s.Active(); err != nil || name != "main" || string(b) != "keep;" {
		t.Fatalf("Active: %q %q %v", name, b, err)
	}
	if err := s.Delete("main"); !errors.Is(err, ErrActiveScript) {
		t.Fatalf("delete active: %v", err)
	}
	if err := s.Rename("main", "spam"); !errors.Is(err, ErrScriptExists) {
		t.Fatalf("rename onto existing: %v", err)
	}
	if err := s.Rename("main", "primary"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); got != "primary*,spam" {
		t.Fatalf("after rename %q", got)
	}
	if err := s.Put("bad", []byte("fileinto \"x\";")); err == nil {
		t.Fatal("invalid script stored")
	} else {
		var se *ScriptError
		if !errors.As(err, &se) || se.Line != 1 {
			t.Fatalf("invalid script error %v", err)
		}
	}
	if err := s.Put("third", []byte("keep;")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("fourth", []byte("keep;")); !errors.Is(err, ErrTooManyScripts) {
		t.Fatalf("count limit: %v", err)
	}
	if err := s.Put("third", []byte("discard;")); err != nil {
		t.Fatalf("replacing must not count: %v", err)
	}
	if err := s.HaveSpace("x", 1001); !errors.Is(err, ErrScriptTooBig) {
		t.Fatalf("size limit: %v", err)
	}
	if err := s.SetActive(""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.ActiveLink); !os.IsNotExist(err) {
		t.Fatalf("link still there: %v", err)
	}
	if err := s.Delete("primary"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("primary"); !errors.Is(err, ErrNoSuchScript) {
		t.Fatalf("delete missing: %v", err)
	}
	if _, err := s.Get("primary"); !errors.Is(err, ErrNoSuchScript) {
		t.Fatalf("get missing: %v", err)
	}
	if err := s.SetActive("nope"); !errors.Is(err, ErrNoSuchScript) {
		t.Fatalf("activate missing: %v", err)
	}
	ents, _ := os.ReadDir(s.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestStorageHandWrittenActiveFile(t *testing.T) {
	s := newStorage(t)
	if err := os.WriteFile(s.ActiveLink, []byte("discard;"), 0o600); err != nil {
		t.Fatal(err)
	}
	if name, b, err := s.Active(); err != nil || name != "" || string(b) != "discard;" {
		t.Fatalf("Active: %q %q %v", name, b, err)
	}
	if err := s.Put("new", []byte("keep;")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive("new"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); got != "dovecot.orig,new*" {
		t.Fatalf("list %q", got)
	}
	if b, _ := s.Get("dovecot.orig"); string(b) != "discard;" {
		t.Fatalf("dovecot.orig = %q", b)
	}
}

func TestCheckName(t *testing.T) {
	for _, n := range []string{"main", "Filtre été", "a.b", strings.Repeat("x", 128)} {
		if err := CheckName(n); err != nil {
			t.Errorf("CheckName(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", ".hidden", "a/b", "a\\b", "a\nb", "\x7f", strings.Repeat("x", 129), "\xff"} {
		if err := CheckName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CheckName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
}
