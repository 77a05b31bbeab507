package pwhash

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// mkpasswd runs Debian's mkpasswd (package whois) with the password on
// standard input.
func mkpasswd(t testing.TB, password string, args ...string) string {
	t.Helper()
	cmd := exec.Command("mkpasswd", append(args, "-s")...)
	cmd.Stdin = strings.NewReader(password)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mkpasswd %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// opensslPasswd runs openssl passwd with the password on standard input.
func opensslPasswd(t testing.TB, password string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", append([]string{"passwd"}, append(args, "-stdin")...)...)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl passwd %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

var testPasswords = []string{"secret", "pässwörd", "", "a", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"}

// TestAgainstMkpasswd hashes with Debian's mkpasswd and openssl in this
// run and checks that Verify accepts the right password, refuses a wrong
// one, and recomputes the very same string.
func TestAgainstMkpasswd(t *testing.T) {
	type gen struct {
		name string
		make func(pw string) string
	}
	var gens []gen
	// Cost factors 1-3 use r=8 without pre-hashing; 5 (Debian's default,
	// N=4096 r=32) pre-hashes with N/64 first. (bench-auth also runs 7.)
	for _, R := range []string{"1", "2", "3", "5"} {
		gens = append(gens, gen{"yescrypt-R" + R, func(pw string) string { return mkpasswd(t, pw, "-m", "yescrypt", "-R", R) }})
	}
	gens = append(gens,
		gen{"sha512crypt", func(pw string) string { return mkpasswd(t, pw, "-m", "sha512crypt") }},
		gen{"sha512crypt-rounds", func(pw string) string { return mkpasswd(t, pw, "-m", "sha512crypt", "-R", "1234") }},
		gen{"sha256crypt", func(pw string) string { return mkpasswd(t, pw, "-m", "sha256crypt") }},
		gen{"sha256crypt-rounds", func(pw string) string { return mkpasswd(t, pw, "-m", "sha256crypt", "-R", "20000") }},
		gen{"md5crypt", func(pw string) string { return mkpasswd(t, pw, "-m", "md5crypt") }},
		gen{"bcrypt", func(pw string) string { return mkpasswd(t, pw, "-m", "bcrypt", "-R", "5") }},
		gen{"bcrypt-a", func(pw string) string { return mkpasswd(t, pw, "-m", "bcrypt-a", "-R", "5") }},
		gen{"openssl-1", func(pw string) string { return opensslPasswd(t, pw, "-1") }},
		gen{"openssl-5", func(pw string) string { return opensslPasswd(t, pw, "-5") }},
		gen{"openssl-6", func(pw string) string { return opensslPasswd(t, pw, "-6") }},
		gen{"openssl-6-salt", func(pw string) string { return opensslPasswd(t, pw, "-6", "-salt", "saltstringsaltstringXX") }},
	)
	for _, g := range gens {
		for _, pw := range testPasswords {
			if strings.HasPrefix(g.name, "yescrypt") && len(pw) != 8 && len(pw) != 1 {
				continue // keep the race-detector run short: two passwords each
			}
			if pw == "" && g.name != "openssl-1" {
				continue // mkpasswd -s refuses an empty password, openssl -5/-6 print <NULL>
			}
			t.Run(fmt.Sprintf("%s/%q", g.name, pw), func(t *testing.T) {
				h := g.make(pw)
				if err := Verify(h, pw); err != nil {
					t.Fatalf("Verify(%s, right password) = %v", h, err)
				}
				// bcrypt reads only 72 bytes: change the first one.
				if err := Verify(h, "x"+pw); !errors.Is(err, ErrMismatch) {
					t.Fatalf("Verify(%s, wrong password) = %v, want ErrMismatch", h, err)
				}
			})
		}
	}
}

func TestLockedAndMalformed(t *testing.T) {
	good := mkpasswd(t, "secret", "-m", "sha512crypt")
	for _, tc := range []struct {
		hash string
		want error
	}{
		{"", ErrLocked},
		{"!", ErrLocked},
		{"!!", ErrLocked},
		{"*", ErrLocked},
		{"!" + good, ErrLocked}, // passwd -l keeps the hash behind a "!"
		{"*LK*" + good, ErrLocked},
		{"x", ErrUnsupported},
		{"abJnggxhB/yWI", ErrUnsupported}, // DES crypt is not accepted
		{"$y$", errYescrypt},
		{"$y$j9T", errYescrypt},
		{"$y$j75$", nil}, // empty salt: computes, then mismatches
		{"$y$j9T$a$", errYescrypt},
		{"$y$jZZZZZZ$abcd$", ErrUnsupported},
	} {
		err := Verify(tc.hash, "secret")
		if tc.want == nil {
			if !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify(%q) = %v, want a mismatch", tc.hash, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("Verify(%q) = %v, want %v", tc.hash, err, tc.want)
		}
	}
	if err := Verify(good, "secret"); err != nil {
		t.Fatal(err)
	}
}

func TestYescryptIntegerEncoding(t *testing.T) {
	for _, min := range []uint32{0, 1, 2} {
		for v := min; v < 200000; v += 1 + v/7 {
			enc := encode64Uint32(nil, v, min)
			got, rest, ok := decode64Uint32(string(enc), min)
			if !ok || rest != "" || got != v {
				t.Fatalf("min %d: %d -> %q -> %d %v %q", min, v, enc, got, ok, rest)
			}
		}
	}
	for _, b := range [][]byte{{}, {0}, {1, 2}, {255, 254, 253}, {1, 2, 3, 4, 5, 6, 7}} {
		enc := encode64(nil, b)
		got, ok := decode64(string(enc))
		if !ok || string(got) != string(b) {
			t.Fatalf("%v -> %q -> %v %v", b, enc, got, ok)
		}
	}
}

// cheap reports whether verifying hash costs little enough to fuzz.
func cheap(hash string) bool {
	switch Scheme(hash) {
	case "yescrypt":
		p, _, _, err := ParseYescrypt(hash)
		return err != nil || (p.N*uint64(p.R)*uint64(p.P) <= 1<<12 && p.T <= 2)
	case "sha256-crypt", "sha512-crypt":
		if i := strings.Index(hash, "rounds="); i >= 0 {
			n := 0
			for _, c := range hash[i+7:] {
				if c < '0' || c > '9' || n > 10000 {
					break
				}
				n = n*10 + int(c-'0')
			}
			return n <= 10000
		}
		return true
	case "bcrypt":
		return len(hash) >= 6 && hash[4:6] <= "06"
	}
	return true
}

// FuzzVerify feeds arbitrary hash strings to the parsers and, when cheap,
// the hash functions: no panic, and a recomputed hash verifies.
func FuzzVerify(f *testing.F) {
	for _, h := range []string{
		"$y$j75$MpniecJeDTmEqw.UIMvBE.$c22zaPSIflo63CV0L25IwGthe7QAvvkT0o.Hn505pUC",
		"$y$j/.$abc$", "$y$.1.$abcd$", "$y$jB.5..$xyzw$", "$y$j.5$$",
		"$6$B8qT17OuPO72tLER$f.eyRGvpJla/Gz18KGWgAWIuv/a1dDPnNo5uq32R/AbNORRwm.rWG/eLKrU6VGG5FQN.he3GpyjkK9igggdDe1",
		"$6$rounds=1000$salt$", "$5$rounds=10$s$x", "$1$caNGPykb$TpV3zPQcftzU6Txy89a8T0", "$1$$",
		"$2b$04$rxftHN.SINUdFf5kcI00BOkr4Uu3rLQ6GNX3HQJHJpEz4ZuCxjgsG", "!", "*", "",
	} {
		f.Add(h, "secret")
	}
	f.Fuzz(func(t *testing.T, hash, pw string) {
		if !cheap(hash) {
			return
		}
		_ = Verify(hash, pw)
		var got string
		var err error
		switch Scheme(hash) {
		case "yescrypt":
			got, err = Yescrypt(pw, hash)
		case "sha256-crypt", "sha512-crypt":
			got, err = SHACrypt(pw, hash)
		case "md5-crypt":
			got, err = MD5Crypt(pw, hash)
		default:
			return
		}
		if err != nil {
			return
		}
		if err := Verify(got, pw); err != nil {
			t.Fatalf("hash %q recomputed as %q does not verify: %v", hash, got, err)
		}
	})
}
