package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sieveConnect runs Debian's sieve-connect as user against addr over
// STARTTLS with the self-signed certificate of --data mode.
func sieveConnect(t *testing.T, addr, user, password string, args ...string) (string, int) {
	t.Helper()
	requireTool(t, "sieve-connect")
	host, port, _ := net.SplitHostPort(addr)
	full := append([]string{"--server", host, "--port", port, "--nosrv", "--notlsverify",
		"--user", user, "--passwordfd", "0", "--authmech", "PLAIN"}, args...)
	cmd := exec.Command("sieve-connect", full...)
	cmd.Stdin = strings.NewReader(password + "\n")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		}
		return out.String(), 0
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("sieve-connect %v timed out\n%s", args, out.String())
	}
	return "", -1
}

func TestManageSieveSieveConnect(t *testing.T) {
	requireTool(t, "sieve-connect")
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServeConfig(t, dir, strings.Replace(subConfig, "%WINDOW%", "1h", 1))
	addr := s.Addr("managesieve")
	scripts := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(scripts, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("filter.sieve", "require [\"fileinto\"];\nif header :contains \"subject\" \"[list]\" {\n  fileinto \"Lists\";\n}\n")
	broken := write("broken.sieve", "require \"fileinto\";\nif true {\n  fileinto \"x\"\n}\n")
	unknownExt := write("ext.sieve", "require \"nosuchextension\";\nkeep;\n")
	sc := func(args ...string) (string, int) { return sieveConnect(t, addr, "alice", "alice-pw", args...) }
	home := filepath.Join(dir, "mail", "alice")

	if out, code := sc("--checkscript", "--localsieve", good); code != 0 {
		t.Fatalf("checkscript of a good script: exit %d\n%s", code, out)
	}
	out, code := sc("--checkscript", "--localsieve", broken)
	if code == 0 || !strings.Contains(out, `NO "line 3, column`) {
		t.Errorf("checkscript of a broken script: exit %d\n%s", code, out)
	}
	out, code = sc("--upload", "--localsieve", broken, "--remotesieve", "broken")
	if code == 0 || !strings.Contains(out, "line 3") {
		t.Errorf("upload of a broken script: exit %d\n%s", code, out)
	}
	if out, code := sc("--upload", "--localsieve", unknownExt, "--remotesieve", "ext"); code == 0 || !strings.Contains(out, "line 1") {
		t.Errorf("upload of a script needing an unknown extension: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(home, "sieve", "broken.sieve")); err == nil {
		t.Error("broken script was stored")
	}
	if out, code := sc("--upload", "--localsieve", good, "--remotesieve", "filter"); code != 0 {
		t.Fatalf("upload: exit %d\n%s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(home, "sieve", "filter.sieve")); err != nil || !strings.Contains(string(b), "fileinto \"Lists\"") {
		t.Fatalf("stored script: %q %v", b, err)
	}
	if out, code := sc("--activate", "--remotesieve", "filter"); code != 0 {
		t.Fatalf("activate: exit %d\n%s", code, out)
	}
	if target, err := os.Readlink(filepath.Join(home, ".dovecot.sieve")); err != nil || !strings.HasSuffix(target, "filter.sieve") {
		t.Fatalf("~/.dovecot.sieve -> %q (%v)", target, err)
	}
	if out, code := sc("--list"); code != 0 || !strings.Contains(out, "filter") || !strings.Contains(out, "ACTIVE") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	dl := filepath.Join(scripts, "downloaded.sieve")
	if out, code := sc("--download", "--remotesieve", "filter", "--localsieve", dl); code != 0 {
		t.Errorf("download: exit %d\n%s", code, out)
	} else if b, _ := os.ReadFile(dl); !bytes.Equal(b, mustRead(t, good)) {
		t.Errorf("downloaded %q", b)
	}
	if out, code := sc("--delete", "--remotesieve", "filter"); code == 0 || !strings.Contains(out, "ACTIVE") {
		t.Errorf("deleting the active script: exit %d\n%s", code, out)
	}
	if out, code := sc("--deactivate"); code != 0 {
		t.Errorf("deactivate: exit %d\n%s", code, out)
	}
	if _, err := os.Lstat(filepath.Join(home, ".dovecot.sieve")); !os.IsNotExist(err) {
		t.Errorf("active link left after deactivate: %v", err)
	}
	if out, code := sc("--delete", "--remotesieve", "filter"); code != 0 {
		t.Errorf("delete: exit %d\n%s", code, out)
	}
	if out, code := sc("--list"); code != 0 || strings.Contains(out, "filter") {
		t.Errorf("list after delete: exit %d\n%s", code, out)
	}
	if out, code := sieveConnect(t, addr, "alice", "wrong", "--list"); code == 0 {
		t.Errorf("wrong password accepted:\n%s", out)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManageSieveNeedsTLS: on an untrusted listener PLAIN is neither
// offered nor accepted before STARTTLS.
func TestManageSieveNeedsTLS(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw")
	s := startServeConfig(t, dir, strings.Replace(subConfig, "%WINDOW%", "1h", 1))
	c, err := net.DialTimeout("tcp", s.Addr("managesieve"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	response := func() []string {
		var lines []string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v %q", err, lines)
			}
			lines = append(lines, strings.TrimRight(l, "\r\n"))
			if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
				return lines
			}
		}
	}
	greeting := strings.Join(response(), "\n")
	mustContain(t, "greeting", greeting, `"SASL" ""`, `"STARTTLS"`, `"SIEVE" "`)
	c.Write([]byte("AUTHENTICATE \"PLAIN\" \"AGFsaWNlAGFsaWNlLXB3\"\r\n"))
	if l := response(); !strings.HasPrefix(l[len(l)-1], "NO (ENCRYPT-NEEDED)") {
		t.Errorf("AUTHENTICATE in clear: %q", l)
	}
}
