package freshmachine

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot is the top of the repository (this package is scripts/freshmachine).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Makefile")); err != nil {
		t.Fatalf("no Makefile at %s: %v", root, err)
	}
	return root
}

// coreutils lists the commands of Debian's coreutils package, read from
// dpkg's file list so the minimal PATH holds exactly that package.
func coreutils(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-L", "coreutils").Output()
	if err != nil {
		t.Fatalf("dpkg-query -L coreutils: %v", err)
	}
	var cmds []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "/usr/bin/") || strings.HasPrefix(p, "/bin/") {
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				cmds = append(cmds, p)
			}
		}
	}
	if len(cmds) < 50 {
		t.Fatalf("coreutils lists only %d commands: %v", len(cmds), cmds)
	}
	return cmds
}

// minimalPath makes a directory of symlinks to the given programs (full
// paths, or names looked up on the current PATH) and returns it.
func minimalPath(t *testing.T, progs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range progs {
		full := p
		if !filepath.IsAbs(p) {
			var err error
			if full, err = exec.LookPath(p); err != nil {
				t.Fatalf("%s is not installed: %v", p, err)
			}
		}
		link := filepath.Join(dir, filepath.Base(p))
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(full, link); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// envWith returns the current environment with PATH replaced and the
// variables dropped that a fresh machine would not have set.
func envWith(path string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PATH", "CGO_ENABLED", "MAILMIG_CONFIG", "MAILMIG_TEST_PACKAGES", "MAKEFLAGS", "MAKELEVEL", "MFLAGS":
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "PATH="+path), extra...)
}

func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out after %v\n%s", name, args, timeout, out.String())
	}
	return out.String(), err
}

// TestDemoNeedsOnlyGoMakeGit runs the README's `make demo` with a PATH of
// Go, make, git, bash and coreutils (plus sed and grep, which every
// Debian system has as Essential packages) and nothing else: no swaks,
// python3, dovecot or gcc.
func TestDemoNeedsOnlyGoMakeGit(t *testing.T) {
	root := repoRoot(t)
	progs := append([]string{"go", "make", "git", "bash", "sed", "grep"}, coreutils(t)...)
	path := minimalPath(t, progs...)
	for _, absent := range []string{"swaks", "python3", "gcc", "cc", "doveadm", "perl"} {
		if _, err := os.Lstat(filepath.Join(path, absent)); err == nil {
			t.Fatalf("minimal PATH holds %s", absent)
		}
	}
	bin := filepath.Join(t.TempDir(), "mailmig")
	out, err := run(t, 5*time.Minute, root, envWith(path, "TMPDIR="+t.TempDir()), filepath.Join(path, "make"), "demo", "BIN="+bin)
	if err != nil {
		t.Fatalf("make demo with PATH=%s: %v\n%s", path, err, out)
	}
	// The demo's last step: everyone cut over, nothing left behind.
	for _, want := range []string{"alice replies to the confirmation", "4 users: 4 done"} {
		if !strings.Contains(out, want) {
			t.Errorf("make demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "command not found") {
		t.Errorf("make demo ran a command that is not on the minimal PATH:\n%s", out)
	}
}

// writeList writes a package list for scripts/test-setup and returns its path.
func writeList(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test-packages")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSetupFailsForMissingTool: scripts/test-setup (and so `make test`)
// fails and prints the exact apt-get line when a package in the list is
// not installed or installed without its command on PATH, and passes
// when everything is there.
func TestSetupFailsForMissingTool(t *testing.T) {
	root := repoRoot(t)
	// What test-setup itself runs, but not make's own binary.
	path := minimalPath(t, append([]string{"bash", "sed", "grep", "dpkg-query", "id"}, coreutils(t)...)...)
	const apt = "apt-get install -y --no-install-recommends "
	tests := []struct {
		name    string
		lines   []string
		missing string // "" = must pass
	}{
		{"all there", []string{"# comment", "", "coreutils ls", "bash bash", "dpkg"}, ""},
		{"package not installed", []string{"coreutils ls", "mailmig-no-such-package", "bash bash"}, "mailmig-no-such-package"},
		{"command not on PATH", []string{"coreutils ls", "make make"}, "make"},
		{"two missing, in order", []string{"mailmig-absent-one cmd", "bash bash", "make make"}, "mailmig-absent-one make"},
		{"path present", []string{"coreutils /bin/ls", "bash bash"}, ""},
		{"path absent", []string{"coreutils /usr/lib/mailmig-absent/imtest", "bash bash"}, "coreutils"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := envWith(path, "MAILMIG_TEST_PACKAGES="+writeList(t, tc.lines...))
			out, err := run(t, time.Minute, root, env, filepath.Join(path, "bash"), "scripts/test-setup", "--check")
			if tc.missing == "" {
				if err != nil {
					t.Fatalf("test-setup --check: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("test-setup --check passed with %s missing:\n%s", tc.missing, out)
			}
			if !strings.Contains(out, "apt-get update && "+apt+tc.missing+"\n") {
				t.Fatalf("test-setup --check does not print %q:\n%s", apt+tc.missing, out)
			}
		})
	}
}

// TestMakeTestStopsAtSetup: `make test` runs the set-up first, and as a
// user who cannot install packages the set-up fails with the apt-get
// line instead of letting the tests run without their tools.
func TestMakeTestStopsAtSetup(t *testing.T) {
	root := repoRoot(t)
	out, err := run(t, time.Minute, root, envWith(os.Getenv("PATH")), "make", "-n", "test")
	if err != nil {
		t.Fatalf("make -n test: %v\n%s", err, out)
	}
	if first, _, _ := strings.Cut(out, "\n"); first != "bash scripts/test-setup" {
		t.Fatalf("make test does not start with the set-up; make -n test:\n%s", out)
	}
	// A list another user can read (t.TempDir's parent is private).
	dir, err := os.MkdirTemp("", "mailmig-setup-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	list := filepath.Join(dir, "test-packages")
	if err := os.WriteFile(list, []byte("coreutils ls\nmailmig-no-such-package\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := envWith(os.Getenv("PATH"), "MAILMIG_TEST_PACKAGES="+list)
	args := []string{"test-setup"}
	name := "make"
	if os.Geteuid() == 0 {
		// As root test-setup would try apt-get; run it as nobody, the
		// way a postmaster's own account sees it.
		name, args = "setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", "make"}, args...)
	}
	out, err = run(t, time.Minute, root, env, name, args...)
	if err == nil {
		t.Fatalf("make test-setup passed with a package missing:\n%s", out)
	}
	if !strings.Contains(out, "apt-get install -y --no-install-recommends mailmig-no-such-package") {
		t.Fatalf("make test-setup does not print the apt-get line:\n%s", out)
	}
}
