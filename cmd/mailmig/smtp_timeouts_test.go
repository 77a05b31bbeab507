package main

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIdleTimeoutWarning: an idle_timeout below RFC 9051 §5.4's 30
// minutes is accepted with a warning by `config check` and at serve
// start; the default gives none.
func TestIdleTimeoutWarning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	os.WriteFile(path, []byte("[connections]\nidle_timeout = \"10m\"\n"), 0o644)
	out, errOut, code := runMailmig(t, "", "config", "check", path)
	if code != 0 || !strings.Contains(out, "WARNING: connections.idle_timeout = 10m0s is below 30 minutes") {
		t.Fatalf("config check: exit %d, %q %q", code, out, errOut)
	}
	os.WriteFile(path, []byte("[connections]\nidle_timeout = \"30m\"\n"), 0o644)
	if out, errOut, code := runMailmig(t, "", "config", "check", path); code != 0 || strings.Contains(out, "idle_timeout") {
		t.Fatalf("config check of 30m: exit %d, %q %q", code, out, errOut)
	}
	s := startServeConfig(t, t.TempDir(), abuseConfig("[connections]\nidle_timeout = \"5m\"\n"))
	if !strings.Contains(s.Log(), "idle_timeout = 5m0s is below 30 minutes") {
		t.Fatalf("serve logged no warning:\n%s", s.Log())
	}
}

// TestSMTPNonReadingClients: submission and LMTP clients that pipeline commands
// and never read their answers are disconnected after [connections]
// write_timeout (go-smtp's WriteTimeout), and the server's memory is
// returned.
func TestSMTPNonReadingClients(t *testing.T) {
	dir := t.TempDir()
	s := startServeConfig(t, dir, abuseConfig("[connections]\nwrite_timeout = \"1s\"\n"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Log())
		}
	})
	pid := s.cmd.Process.Pid
	base := rssKB(t, pid)
	// Each EHLO (LMTP: LHLO) is answered by its multi-line capability
	// list, ~200 bytes. The client's receive buffer is held at 32 KB
	// (Linux would grow it to tcp_rmem's 32 MB) and it reads nothing, so
	// once the server's send buffer is full too (at most tcp_wmem's 4 MB:
	// ~20,000 answers, where 25-byte RSET answers needed 160,000, more
	// than a race-built server on a loaded machine handled in 2 minutes)
	// its write stalls and it stops reading commands. 2,000,000 commands
	// (16 MB) are more than the client's send buffer and the server's
	// receive buffer hold, so the client's write can only end when the
	// server closes the connection (write_timeout after its stalled
	// write) or, if it never stalled, after it read every command.
	const ncmds = 2000000
	cmds := map[string]string{
		"submission": strings.Repeat("EHLO x\r\n", ncmds),
		"lmtp":       strings.Repeat("LHLO x\r\n", ncmds),
	}
	var conns []*rawConn
	wrote := make([]chan error, 10)
	for i := 0; i < 10; i++ {
		kind := []string{"submission", "lmtp"}[i%2] // LMTP's TCP listener too
		r := dialRaw(t, s.Addr(kind), false)
		r.until("220 ")
		if err := r.nc.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
			t.Fatal(err)
		}
		wrote[i] = make(chan error, 1)
		go func(r *rawConn, cmds string, done chan<- error) {
			// A race-built server handles each EHLO as a new session:
			// on a busy machine it can take minutes to fill its send
			// buffer and stall (once, not within 2 minutes).
			r.nc.SetWriteDeadline(time.Now().Add(5 * time.Minute))
			_, err := io.WriteString(r.nc, cmds)
			done <- err
		}(r, cmds[kind], wrote[i])
		conns = append(conns, r)
	}
	for i, r := range conns {
		err := <-wrote[i]
		if err == nil {
			t.Fatalf("client %d: all %d commands were read by a server that could not send their answers", i, ncmds)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("client %d: still connected after 5 minutes of not reading", i)
		}
		r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, rerr := io.Copy(io.Discard, r.br)
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			t.Fatalf("client %d: the server closed (write: %v) but reading did not end (got %d bytes)", i, err, n)
		}
		t.Logf("client %d: write ended with %v; then %d bytes of answers, %v", i, err, n, rerr)
		r.nc.Close()
	}
	time.Sleep(2 * time.Second)
	after := rssKB(t, pid)
	t.Logf("RSS before %d KB, after the stalled clients %d KB", base, after)
	if after-base > 30<<10 {
		t.Fatalf("stalled clients left %d KB behind", after-base)
	}
	// The servers still answer.
	for _, kind := range []string{"submission", "lmtp"} {
		r := dialRaw(t, s.Addr(kind), false)
		r.until("220 ")
		r.send("NOOP\r\n")
		r.until("250 ")
	}
}
