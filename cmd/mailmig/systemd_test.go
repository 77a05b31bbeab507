package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitDir holds the shipped systemd units, tmpfiles.d and sysusers.d files.
var unitDir, _ = filepath.Abs("../../scripts/systemd")

// TestServeNotifiesSystemd: as a Type=notify service, mailmig serve sends
// READY=1 with its PID once the listeners are bound, RELOADING=1 then
// READY=1 around a SIGHUP, and STOPPING=1 on SIGTERM (sd_notify(3)).
func TestServeNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	recv := func(what string) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		return string(buf[:n])
	}
	t.Setenv("NOTIFY_SOCKET", sock)
	dir := t.TempDir()
	s := startServe(t, dir)
	pid := strconv.Itoa(s.cmd.Process.Pid)
	if got := recv("READY"); !strings.HasPrefix(got, "READY=1\nMAINPID="+pid+"\n") {
		t.Fatalf("first notification %q, want READY=1 and MAINPID=%s", got, pid)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	if got := recv("RELOADING"); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[0-9]+\n$`).MatchString(got) {
		t.Fatalf("after SIGHUP: %q", got)
	}
	if got := recv("READY after reload"); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("after the reload: %q", got)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if got := recv("STOPPING"); got != "STOPPING=1\n" {
		t.Fatalf("after SIGTERM: %q", got)
	}
	s.Stop()
	if !strings.Contains(s.Log(), "configuration reloaded") {
		t.Errorf("no reload in the log:\n%s", s.Log())
	}
}

// unitCopies copies the units to a temporary directory with the binary
// under test in place of /usr/sbin/mailmig (systemd-analyze verify checks
// that ExecStart's program exists).
func unitCopies(t *testing.T) (dir string, units []string) {
	t.Helper()
	dir = t.TempDir()
	names, err := filepath.Glob(filepath.Join(unitDir, "*.service"))
	if err != nil || len(names) != 2 {
		t.Fatalf("units in %s: %v %v", unitDir, names, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(n))
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/sbin/mailmig", mailmigBin(t))), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	return dir, units
}

// TestSystemdUnitsVerify: systemd-analyze verify reports nothing for the
// shipped units; they carry what a postmaster expects; and every
// ExecStart is a command line the binary accepts (no flag drift).
func TestSystemdUnitsVerify(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	_, units := unitCopies(t)
	// --man=no: the man pages are checked where they are installed (the
	// package test); here they are not.
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	want := map[string][]string{
		"mailmig-serve.service": {"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "User=mailmig",
			"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
			"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes"},
		"mailmig-run.service": {"User=mailmig", "SupplementaryGroups=mail", "NoNewPrivileges=yes",
			"ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=read-only"},
	}
	for _, u := range units {
		b, _ := os.ReadFile(u)
		lines := strings.Split(string(b), "\n")
		for _, w := range want[filepath.Base(u)] {
			found := false
			for _, l := range lines {
				found = found || l == w
			}
			if !found {
				t.Errorf("%s lacks %q", filepath.Base(u), w)
			}
		}
		for _, l := range lines {
			exe, ok := strings.CutPrefix(l, "ExecStart=")
			if !ok {
				continue
			}
			args := strings.Fields(exe)
			if args[0] != mailmigBin(t) {
				t.Errorf("%s: ExecStart runs %s", filepath.Base(u), args[0])
				continue
			}
			// --help after the command's own flags: parses them, runs nothing.
			if out, err := exec.Command(args[0], append(args[1:], "--help")...).CombinedOutput(); err != nil {
				t.Errorf("%s: %s --help: %v\n%s", filepath.Base(u), exe, err, out)
			}
		}
	}
	// systemd-analyze security rates the serve unit's exposure from 0 to
	// 10 (--threshold counts tenths); ours must stay "OK", below 4.
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=40", units[1]).CombinedOutput()
	if filepath.Base(units[1]) != "mailmig-serve.service" || err != nil {
		t.Errorf("systemd-analyze security %s: %v\n%s", units[1], err, out)
	}
}

// TestSysusersTmpfiles: systemd-sysusers creates the mailmig user from
// the shipped sysusers.d file, and systemd-tmpfiles then creates the
// directories owned by it, both in a scratch root.
func TestSysusersTmpfiles(t *testing.T) {
	sysusers := requireTool(t, "systemd-sysusers")
	tmpfiles := requireTool(t, "systemd-tmpfiles")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sysusers, "--root="+root, filepath.Join(unitDir, "mailmig.sysusers")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	uid := -1
	for _, l := range strings.Split(string(passwd), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 7 && f[0] == "mailmig" {
			uid, _ = strconv.Atoi(f[2])
			if f[5] != "/var/lib/mailmig" || f[6] != "/usr/sbin/nologin" {
				t.Errorf("mailmig's passwd line: %q", l)
			}
		}
	}
	if uid <= 0 || uid >= 1000 {
		t.Fatalf("mailmig is not a system user in %s:\n%s", root, passwd)
	}
	if out, err := exec.Command(tmpfiles, "--root="+root, "--create", filepath.Join(unitDir, "mailmig.tmpfiles")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
		uid  int
	}{
		{"run/mailmig", 0o751, uid}, {"var/lib/mailmig", 0o750, uid},
		{"var/spool/mailmig/outbound", 0o750, uid}, {"srv/mail", 0o750, uid},
		{"etc/mailmig/tls", 0o750, 0},
	} {
		fi, err := os.Stat(filepath.Join(root, d.path))
		if err != nil {
			t.Errorf("tmpfiles did not create /%s: %v", d.path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || fi.Mode().Perm() != d.mode || int(st.Uid) != d.uid {
			t.Errorf("/%s: mode %v uid %d, want dir %v uid %d", d.path, fi.Mode(), st.Uid, d.mode, d.uid)
		}
	}
}
