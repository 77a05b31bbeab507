package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the mailmig binary built once by TestMain for every
// end-to-end test in this package.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailmig-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binPath = filepath.Join(dir, "mailmig")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mailmig for the tests:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mailmigBin returns the path of the binary under test.
func mailmigBin(t testing.TB) string {
	t.Helper()
	return binPath
}

// requireTool fails the test when a Debian tool it needs is missing:
// `make test` (scripts/test-setup) installs every tool in
// scripts/test-packages, so a missing one is a broken set-up, never a
// reason to skip.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed; run scripts/test-setup (make test does) to install scripts/test-packages", name)
	}
	return p
}

// mailmigCmd prepares `mailmig --data dataDir args...` ("" = no --data).
func mailmigCmd(dataDir string, args ...string) *exec.Cmd {
	full := args
	if dataDir != "" {
		full = append([]string{"--data", dataDir}, args...)
	}
	cmd := exec.Command(binPath, full...)
	cmd.Env = append(os.Environ(), "MAILMIG_CONFIG=")
	return cmd
}

// runMailmig runs the binary and returns its output and exit code.
func runMailmig(t testing.TB, dataDir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runMailmigStdin(t, dataDir, "", args...)
}

// runMailmigStdin is runMailmig with standard input.
func runMailmigStdin(t testing.TB, dataDir, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := mailmigCmd(dataDir, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("mailmig %v: timed out\nstderr: %s", args, errb.String())
	}
	return out.String(), errb.String(), 0
}

// mustMailmig runs the binary and fails the test on a non-zero exit.
func mustMailmig(t testing.TB, dataDir string, args ...string) string {
	t.Helper()
	out, errOut, code := runMailmig(t, dataDir, args...)
	if code != 0 {
		t.Fatalf("mailmig %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// createUser adds a server account.
func createUser(t testing.TB, dataDir, user, password string) {
	t.Helper()
	out, errOut, code := runMailmigStdin(t, dataDir, password+"\n", "user", "add", user)
	if code != 0 {
		t.Fatalf("user add %s: exit %d: %s %s", user, code, out, errOut)
	}
}

// addOldUsers makes users known to the old side in --data mode: a home
// directory each below DIR/old/home and a line in the DIR/old/homes map.
func addOldUsers(t testing.TB, dataDir string, users ...string) {
	t.Helper()
	old := filepath.Join(dataDir, "old")
	if err := os.MkdirAll(filepath.Join(old, "spool"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(old, "homes"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addOldShadow(t, dataDir, users...)
	for _, u := range users {
		home := filepath.Join(old, "home", u)
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "%s %s\n", u, home)
	}
}

// addOldShadow gives old users a system password, "old-password", in
// DIR/old/shadow (the crypt password source in --data mode), so the
// runner's login check passes as on a real site.
func addOldShadow(t testing.TB, dataDir string, users ...string) {
	t.Helper()
	sh, err := os.OpenFile(filepath.Join(dataDir, "old", "shadow"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	for _, u := range users {
		fmt.Fprintf(sh, "%s:%s:19000:0:99999:7:::\n", u, oldPasswordHash(t))
	}
}

var oldPasswordHashOnce struct {
	sync.Once
	hash string
}

// oldPasswordHash is a sha512-crypt hash of "old-password" made by
// Debian's mkpasswd.
func oldPasswordHash(t testing.TB) string {
	oldPasswordHashOnce.Do(func() { oldPasswordHashOnce.hash = mkpasswdHash(t, "old-password", "-m", "sha512crypt") })
	return oldPasswordHashOnce.hash
}

// served is a running `mailmig serve`.
type served struct {
	t     testing.TB
	cmd   *exec.Cmd
	addrs map[string][]string
	log   *bytes.Buffer
	done  chan error
}

// startServe starts `mailmig --data dataDir serve args...` and waits until
// its listeners are bound (serve.addrs written). The server is stopped
// with SIGTERM when the test ends.
func startServe(t testing.TB, dataDir string, args ...string) *served {
	t.Helper()
	return startServeGlobal(t, dataDir, nil, args...)
}

// startServeConfig is startServe with a configuration file written from
// configText (global flags come before the subcommand).
func startServeConfig(t testing.TB, dataDir, configText string, args ...string) *served {
	t.Helper()
	cfg := filepath.Join(dataDir, "test.toml")
	if err := os.WriteFile(cfg, []byte(configText), 0o644); err != nil {
		t.Fatal(err)
	}
	return startServeGlobal(t, dataDir, []string{"--config", cfg}, args...)
}

func startServeGlobal(t testing.TB, dataDir string, global []string, args ...string) *served {
	t.Helper()
	addrFile := filepath.Join(dataDir, "serve.addrs")
	os.Remove(addrFile)
	cmd := mailmigCmd(dataDir, append(append(append([]string{}, global...), "serve"), args...)...)
	s := &served{t: t, cmd: cmd, log: &bytes.Buffer{}, done: make(chan error, 1)}
	out := &syncWriter{buf: s.log}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("mailmig serve exited early: %v\n%s", err, s.Log())
		default:
		}
		if b, err := os.ReadFile(addrFile); err == nil && json.Unmarshal(b, &s.addrs) == nil {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("mailmig serve did not write %s in 30s\n%s", addrFile, s.Log())
	return nil
}

// Addr returns the first bound address of a listener kind (imap, imaps,
// lmtp, submission, submissions, managesieve).
func (s *served) Addr(kind string) string {
	s.t.Helper()
	a := s.addrs[kind]
	if len(a) == 0 {
		s.t.Fatalf("no %s listener; have %v", kind, s.addrs)
	}
	return a[0]
}

// Log returns what the server printed so far.
func (s *served) Log() string {
	if w, ok := s.cmd.Stderr.(*syncWriter); ok {
		return w.String()
	}
	return ""
}

// Stop sends SIGTERM and waits for a graceful exit (kills after 20 s).
func (s *served) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("mailmig serve did not stop within 20s after SIGTERM\n%s", s.Log())
	}
}

// syncWriter is a bytes.Buffer safe for the child's output goroutine and
// the test reading it.
type syncWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
