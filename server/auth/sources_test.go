package auth

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmig/server/auth/pwfile"
	"mailmig/state"
)

func mkpasswd(t testing.TB, pw string, args ...string) string {
	t.Helper()
	cmd := exec.Command("mkpasswd", append(args, "-s")...)
	cmd.Stdin = strings.NewReader(pw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mkpasswd: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func openDB(t testing.TB) *state.DB {
	t.Helper()
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestChainCryptAndAccounts runs the chain over a shadow file written
// with Debian's mkpasswd hashes and the accounts table: the first source
// that knows a user decides, locked/expired/empty never authenticate,
// and a crypt login is rehashed into accounts.
func TestChainCryptAndAccounts(t *testing.T) {
	dir := t.TempDir()
	shadow := filepath.Join(dir, "shadow")
	lines := []string{
		"carol:" + mkpasswd(t, "carol-pw", "-m", "yescrypt", "-R", "1") + ":19000:0:99999:7:::",
		"dave:" + mkpasswd(t, "dave-pw", "-m", "sha512crypt") + ":19000:0:99999:7:::",
		"erin:" + mkpasswd(t, "erin-pw", "-m", "md5crypt") + ":19000:0:99999:7:::",
		"frank:!" + mkpasswd(t, "frank-pw", "-m", "yescrypt", "-R", "1") + ":19000:0:99999:7:::",
		"gina::19000:0:99999:7:::",
		"hank:*:19000:0:99999:7:::",
		"ivan:" + mkpasswd(t, "ivan-pw", "-m", "yescrypt", "-R", "1") + ":19000:0:99999:7::1:",
		"bob:" + mkpasswd(t, "shadow-bob", "-m", "yescrypt", "-R", "1") + ":19000:0:99999:7:::",
		"broken line",
	}
	if err := os.WriteFile(shadow, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	ctx := context.Background()
	if err := db.AddAccount(ctx, "bob", "accounts-bob", -1, -1); err != nil {
		t.Fatal(err)
	}
	crypt, err := NewCryptSource(shadow, pwfile.Shadow, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain := &Chain{Sources: []Source{AccountsSource{DB: db}, crypt}, OnSuccess: Rehash(db)}

	for _, tc := range []struct {
		user, pw string
		want     error
	}{
		{"bob", "accounts-bob", nil},
		{"bob", "shadow-bob", state.ErrBadPassword}, // accounts knows bob and decides
		{"carol", "carol-pw", nil},
		{"carol", "wrong", state.ErrBadPassword},
		{"dave", "dave-pw", nil},
		{"erin", "erin-pw", nil},
		{"frank", "frank-pw", ErrLocked},
		{"gina", "", ErrLocked},
		{"gina", "x", ErrLocked},
		{"hank", "x", ErrLocked},
		{"ivan", "ivan-pw", ErrLocked}, // expired in 1970
		{"nobody", "x", state.ErrNoAccount},
	} {
		err := chain.Authenticate(ctx, tc.user, tc.pw)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s/%s: %v, want %v", tc.user, tc.pw, err, tc.want)
		}
	}
	// carol, dave, erin now have argon2id accounts with their password.
	for _, u := range []string{"carol", "dave", "erin"} {
		h, err := db.PasswordHash(ctx, u)
		if err != nil || !strings.HasPrefix(h, "$argon2id$") {
			t.Errorf("%s not rehashed: %q %v", u, h, err)
		}
		if err := (AccountsSource{DB: db}).Verify(ctx, u, u+"-pw"); err != nil {
			t.Errorf("%s's accounts password: %v", u, err)
		}
	}
	if _, err := db.PasswordHash(ctx, "frank"); !errors.Is(err, state.ErrNoAccount) {
		t.Errorf("a locked user got an account: %v", err)
	}

	want := map[string]LoginStatus{
		"bob":    {Source: "accounts", CanLogin: true},
		"carol":  {Source: "accounts", CanLogin: true},
		"frank":  {Source: "crypt", Reason: "account locked or without password in " + shadow + " (line 4)"},
		"ivan":   {Source: "crypt", Reason: "account expired in " + shadow + " (line 7)"},
		"nobody": {Reason: "no account in any password source (accounts, crypt)"},
	}
	var users []string
	for u := range want {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		got, err := chain.Status(ctx, u)
		if err != nil || got != want[u] {
			t.Errorf("Status(%s) = %+v %v, want %+v", u, got, err, want[u])
		}
	}

	// The file is re-read when it changes.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(shadow, []byte("zoe:"+mkpasswd(t, "zoe-pw", "-m", "sha256crypt")+":1:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := crypt.Verify(ctx, "zoe", "zoe-pw"); err != nil {
		t.Errorf("after the file changed: %v", err)
	}
	if err := crypt.Verify(ctx, "dave", "dave-pw"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("dave after removal: %v", err)
	}
}

// TestUnknownCostsLikeWrong: with the crypt source first, an unknown user
// costs one dummy check like the file's usual hash (medians of 9
// interleaved runs within a factor of two). The cost is CPU time of the
// process (rusage): on this shared machine a 3 ms hash's wall time is
// mostly other processes' time slices, and the check is about the work
// a login does.
func TestUnknownCostsLikeWrong(t *testing.T) {
	shadow := filepath.Join(t.TempDir(), "shadow")
	var lines []string
	for _, u := range []string{"a", "b", "c"} {
		lines = append(lines, u+":"+mkpasswd(t, u+"-pw", "-m", "yescrypt", "-R", "3")+":19000:0:99999:7:::")
	}
	os.WriteFile(shadow, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	crypt, err := NewCryptSource(shadow, pwfile.Shadow, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain := &Chain{Sources: []Source{crypt}}
	ctx := context.Background()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var wrong, unknown []time.Duration
	chain.Authenticate(ctx, "a", "warm-up") // the first hash allocates V
	for range 9 {
		t0 := cpu()
		chain.Authenticate(ctx, "a", "x")
		t1 := cpu()
		chain.Authenticate(ctx, "zz", "x")
		wrong, unknown = append(wrong, t1-t0), append(unknown, cpu()-t1)
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	w, u := med(wrong), med(unknown)
	if u < w/2 || u > 2*w {
		t.Errorf("unknown user %v, wrong password %v", u, w)
	}
}
