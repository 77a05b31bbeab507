package imap

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// dovecotProc is Debian's dovecot imap binary run as alice, PREAUTH on
// its stdin and stdout.
type dovecotProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.Reader
	once   sync.Once
}

// startDovecotIMAP starts dovecot's imap with config conf for alice, whose
// home is dir/alice: as nobody when the test runs as root (dovecot will not
// touch mail as root). stderr, if not nil, gets its standard error. It is
// stopped at the test's end if the caller did not stop it before.
func startDovecotIMAP(t *testing.T, dir, conf string, stderr io.Writer) *dovecotProc {
	t.Helper()
	env := []string{"USER=alice", "HOME=" + filepath.Join(dir, "alice"), "PATH=/usr/bin:/bin"}
	cmd := exec.Command(dovecotIMAP, "-c", conf)
	cmd.Env = env
	if os.Geteuid() == 0 {
		cmd = exec.Command("setpriv", append(append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i"}, env...), dovecotIMAP, "-c", conf)...)
	}
	cmd.Stderr = stderr
	p := &dovecotProc{cmd: cmd}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

// stop closes dovecot's input and waits up to 10 s for it to end, then
// kills it.
func (p *dovecotProc) stop() {
	p.once.Do(func() {
		p.stdin.Close()
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
	})
}
