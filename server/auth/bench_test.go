package auth

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"mailmig/server/auth/pwfile"
)

// BenchmarkLogins: right-password logins a second through the chain,
// one source at a time, one after another (a login uses one core):
// accounts (argon2id, 19 MiB), crypt with the hashes Debian's mkpasswd
// makes by default (yescrypt N=4096 r=32, sha512crypt 5000 rounds,
// md5crypt, bcrypt cost 5 as mkpasswd's default); kerberos is
// kerberos.BenchmarkKerberosLogin. Run: make bench-auth.
func BenchmarkLogins(b *testing.B) {
	ctx := context.Background()
	db := openDB(b)
	if err := db.AddAccount(ctx, "acct", "acct-pw", -1, -1); err != nil {
		b.Fatal(err)
	}
	b.Run("accounts-argon2id", func(b *testing.B) {
		benchChain(b, &Chain{Sources: []Source{AccountsSource{DB: db}}}, "acct", "acct-pw")
	})
	for _, m := range []string{"yescrypt", "sha512crypt", "md5crypt", "bcrypt"} {
		b.Run("crypt-"+m, func(b *testing.B) {
			shadow := filepath.Join(b.TempDir(), "shadow")
			os.WriteFile(shadow, []byte("u:"+mkpasswd(b, "u-pw", "-m", m)+":19000:0:99999:7:::\n"), 0o600)
			src, err := NewCryptSource(shadow, pwfile.Shadow, nil)
			if err != nil {
				b.Fatal(err)
			}
			benchChain(b, &Chain{Sources: []Source{src}}, "u", "u-pw")
		})
	}
}

func benchChain(b *testing.B, c *Chain, user, pw string) {
	ctx := context.Background()
	if err := c.Authenticate(ctx, user, pw); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Authenticate(ctx, user, pw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
