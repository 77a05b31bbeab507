package packaging

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// run runs a command with a time bound and returns its combined output.
func run(t *testing.T, timeout time.Duration, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// must is run that fails the test on an error.
func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, 2*time.Minute, "", name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// dpkg runs dpkg, waiting (bounded) while another dpkg or apt holds the
// lock: the machine is shared.
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	for i := 0; ; i++ {
		out, err := run(t, 2*time.Minute, "", "dpkg", args...)
		if err == nil {
			return out
		}
		if !strings.Contains(out, "lock") || i == 60 {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		time.Sleep(2 * time.Second)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestDebInstallPurge builds the package with `make deb`, installs it
// with dpkg -i, checks what a postmaster would, and purges it.
func TestDebInstallPurge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("dpkg -i needs root: run as root (make test and CI do)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := run(t, time.Minute, "", "dpkg-query", "-W", "-f", "${Status}", "mailmig"); strings.Contains(out, "installed") {
		t.Fatalf("a mailmig package is already installed here (%s); this test installs and purges its own: dpkg --purge mailmig first", out)
	}
	// What exists before: the purge must leave exactly this.
	watched := []string{"/etc/mailmig", "/var/lib/mailmig", "/var/spool/mailmig", "/run/mailmig", "/srv/mail"}
	before := map[string]bool{}
	for _, p := range watched {
		before[p] = exists(p)
	}
	_, hadUser := run(t, time.Minute, "", "getent", "passwd", "mailmig")

	build := t.TempDir()
	// As under `make test` (which sets CGO_ENABLED=1 for the race
	// detector): the packaged binary must still be static.
	t.Setenv("CGO_ENABLED", "1")
	out, err := run(t, 10*time.Minute, root, "make", "deb", "BUILDDIR="+build, "BIN="+filepath.Join(build, "mailmig"), "VERSION=9.8.7-test")
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(build, "mailmig_*.deb"))
	if len(debs) != 1 || !strings.Contains(debs[0], "mailmig_9.8.7~test_") {
		t.Fatalf("make deb made %v\n%s", debs, out)
	}
	deb := debs[0]
	contents := must(t, "dpkg-deb", "-c", deb)
	var files []string
	for _, l := range strings.Split(contents, "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && !strings.HasPrefix(f[0], "d") {
			files = append(files, strings.TrimPrefix(f[5], "."))
		}
	}
	for _, want := range []string{"/usr/sbin/mailmig", "/etc/mailmig/mailmig.toml",
		"/usr/lib/systemd/system/mailmig-serve.service", "/usr/lib/systemd/system/mailmig-run.service",
		"/usr/lib/sysusers.d/mailmig.conf", "/usr/lib/tmpfiles.d/mailmig.conf",
		"/usr/share/man/man8/mailmig.8.gz", "/usr/share/man/man8/mailmig-enqueue.8.gz",
		"/usr/share/man/man8/mailmig-serve.8.gz", "/usr/share/man/man5/mailmig.toml.5.gz",
		"/usr/share/bash-completion/completions/mailmig", "/usr/share/zsh/vendor-completions/_mailmig"} {
		if !strings.Contains("\n"+strings.Join(files, "\n")+"\n", "\n"+want+"\n") {
			t.Errorf("the package lacks %s; it has:\n%s", want, contents)
		}
	}

	dpkg(t, "-i", deb)
	purged := false
	t.Cleanup(func() {
		if !purged {
			run(t, 2*time.Minute, "", "dpkg", "--purge", "mailmig")
		}
	})

	// The binary runs and carries the version it was built with.
	if v := must(t, "/usr/sbin/mailmig", "--version"); !strings.Contains(v, "9.8.7-test") {
		t.Errorf("mailmig --version: %q", v)
	}
	// Static: no ELF interpreter, so no library dependency to declare.
	if f, err := elf.Open("/usr/sbin/mailmig"); err != nil {
		t.Error(err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("/usr/sbin/mailmig is dynamically linked (built with cgo)")
			}
		}
		f.Close()
	}
	// The configuration is a conffile, readable by the mailmig group only.
	if c := must(t, "dpkg-query", "-W", "-f", "${Conffiles}", "mailmig"); !strings.Contains(c, "/etc/mailmig/mailmig.toml") {
		t.Errorf("conffiles: %q", c)
	}
	if out := must(t, "stat", "-c", "%a %U %G", "/etc/mailmig/mailmig.toml"); strings.TrimSpace(out) != "640 root mailmig" {
		t.Errorf("/etc/mailmig/mailmig.toml: %s", out)
	}
	// The system user and its directories.
	pw := strings.Split(strings.TrimSpace(must(t, "getent", "passwd", "mailmig")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/mailmig" || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("mailmig user: %v", pw)
	}
	// /run/mailmig is 751: users reach the control socket for their own
	// quota (docs/deploying.md) but cannot list the directory.
	for d, want := range map[string]string{"/var/lib/mailmig": "mailmig 750", "/var/spool/mailmig/outbound": "mailmig 750", "/run/mailmig": "mailmig 751"} {
		if out := must(t, "stat", "-c", "%U %a", d); strings.TrimSpace(out) != want {
			t.Errorf("%s: %s, want %s", d, out, want)
		}
	}
	// The units are where systemd looks: its offline unit-file list sees
	// them (systemctl cat needs a running systemd, which this machine has
	// not), and systemd-analyze verifies them with their man pages
	// (Documentation=man:mailmig-serve(8) must resolve).
	if out := must(t, "systemctl", "--root=/", "list-unit-files", "mailmig-serve.service", "mailmig-run.service"); !strings.Contains(out, "mailmig-serve.service") || !strings.Contains(out, "mailmig-run.service") {
		t.Errorf("systemctl list-unit-files:\n%s", out)
	}
	if out := must(t, "systemd-analyze", "unit-paths"); !strings.Contains(out, "\n/usr/lib/systemd/system\n") {
		t.Errorf("/usr/lib/systemd/system is not a unit path:\n%s", out)
	}
	if out, err := run(t, 2*time.Minute, "", "systemd-analyze", "verify", "--man=yes",
		"/usr/lib/systemd/system/mailmig-serve.service", "/usr/lib/systemd/system/mailmig-run.service"); err != nil || out != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// man finds and renders the pages.
	for page, want := range map[string]string{"mailmig-enqueue": "mailmig-enqueue - ", "mailmig": "COMMANDS", "mailmig.toml": "[server]"} {
		cmd := exec.Command("man", page)
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80", "LC_ALL=C.UTF-8")
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("man %s: %v\n%s", page, err, b)
		}
	}
	// bash completion from the installed file.
	if out := must(t, "bash", "-c", `source /usr/share/bash-completion/completions/mailmig; COMP_WORDS=(mailmig ser); COMP_CWORD=1; _mailmig; echo "${COMPREPLY[@]}"`); strings.TrimSpace(out) != "serve" {
		t.Errorf("bash completion of 'mailmig ser': %q", out)
	}

	// Reinstalling (an upgrade's path through postinst) keeps the
	// postmaster's configuration, its content and its mode.
	edited := "# the site's own\n[server]\nhostname = \"mail.site.example\"\n"
	if err := os.WriteFile("/etc/mailmig/mailmig.toml", []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod("/etc/mailmig/mailmig.toml", 0o600)
	dpkg(t, "--force-confold", "-i", deb)
	if b, _ := os.ReadFile("/etc/mailmig/mailmig.toml"); string(b) != edited {
		t.Errorf("reinstall replaced the edited configuration:\n%s", b)
	}
	if out := must(t, "stat", "-c", "%a", "/etc/mailmig/mailmig.toml"); strings.TrimSpace(out) != "600" {
		t.Errorf("reinstall changed the configuration's mode to %s", out)
	}

	dpkg(t, "--purge", "mailmig")
	purged = true
	if out, _ := run(t, time.Minute, "", "dpkg-query", "-W", "-f", "${Status}", "mailmig"); strings.Contains(out, "installed") {
		t.Errorf("after purge dpkg still has it: %s", out)
	}
	for _, f := range files {
		if exists(f) {
			t.Errorf("after purge %s is still there", f)
		}
	}
	for _, p := range watched {
		if exists(p) != before[p] {
			t.Errorf("after purge %s exists=%v, before install %v", p, exists(p), before[p])
		}
	}
	if _, err := run(t, time.Minute, "", "getent", "passwd", "mailmig"); (err == nil) != (hadUser == nil) {
		t.Errorf("after purge the mailmig user exists=%v, before install %v", err == nil, hadUser == nil)
	}
}

// TestMakeInstallPrefix: `make install DESTDIR=... PREFIX=/usr/local`
// puts every file under the prefix, points the units' ExecStart at the
// installed binary, and keeps a configuration that is already there.
func TestMakeInstallPrefix(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	build, dest := t.TempDir(), t.TempDir()
	conf := filepath.Join(dest, "etc/mailmig/mailmig.toml")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	const mine = "# the site's own\n[server]\nhostname = \"mail.site.example\"\n"
	os.WriteFile(conf, []byte(mine), 0o640)
	out, err := run(t, 10*time.Minute, root, "make", "install", "DESTDIR="+dest, "PREFIX=/usr/local",
		"BUILDDIR="+build, "BIN="+filepath.Join(build, "mailmig"))
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/local/sbin/mailmig", "usr/local/lib/systemd/system/mailmig-serve.service",
		"usr/local/lib/systemd/system/mailmig-run.service", "usr/local/lib/sysusers.d/mailmig.conf",
		"usr/local/lib/tmpfiles.d/mailmig.conf", "usr/local/share/man/man8/mailmig-serve.8",
		"usr/local/share/man/man5/mailmig.toml.5", "usr/local/share/bash-completion/completions/mailmig",
		"usr/local/share/zsh/vendor-completions/_mailmig"} {
		if !exists(filepath.Join(dest, f)) {
			t.Errorf("make install did not install /%s", f)
		}
	}
	for _, u := range []string{"mailmig-serve.service", "mailmig-run.service"} {
		b, _ := os.ReadFile(filepath.Join(dest, "usr/local/lib/systemd/system", u))
		if !strings.Contains(string(b), "\nExecStart=/usr/local/sbin/mailmig --config /etc/mailmig/mailmig.toml ") {
			t.Errorf("%s: ExecStart not pointed at /usr/local/sbin:\n%s", u, b)
		}
	}
	if b, _ := os.ReadFile(conf); string(b) != mine {
		t.Errorf("make install replaced the existing configuration:\n%s", b)
	}
	// /usr/local/lib/systemd/system is one of systemd's unit paths.
	if out := must(t, "systemd-analyze", "unit-paths"); !strings.Contains(out, "\n/usr/local/lib/systemd/system\n") {
		t.Errorf("/usr/local/lib/systemd/system is not a unit path:\n%s", out)
	}
}
