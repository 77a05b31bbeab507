package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mailmig/server/auth/kerberos/kdctest"
)

// mkpasswdHash hashes with Debian's mkpasswd (package whois).
func mkpasswdHash(t testing.TB, pw string, args ...string) string {
	t.Helper()
	cmd := exec.Command("mkpasswd", append(args, "-s")...)
	cmd.Stdin = strings.NewReader(pw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mkpasswd: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// tryLogin logs in with one protocol and mechanism: imap-login,
// imap-plain (AUTHENTICATE PLAIN with a continuation), submission-plain,
// submission-login, managesieve-plain. It answers "ok" or "failed".
func tryLogin(c *loginClient, mech, user, pass string) (string, error) {
	if err := c.connect(); err != nil {
		return "", err
	}
	defer c.close()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	switch mech {
	case "imap-login", "submission-plain", "managesieve-plain":
		return c.login(user, pass)
	case "imap-plain":
		if err := c.send("a1 AUTHENTICATE PLAIN"); err != nil {
			return "", err
		}
		if _, err := c.until("+"); err != nil {
			return "", err
		}
		if err := c.send(b64("\x00" + user + "\x00" + pass)); err != nil {
			return "", err
		}
		l, err := c.until("a1 ")
		switch {
		case err != nil:
			return "", err
		case strings.HasPrefix(l, "a1 OK"):
			return "ok", nil
		case strings.HasPrefix(l, "a1 NO [AUTHENTICATIONFAILED]"):
			return "failed", nil
		}
		return "", fmt.Errorf("imap AUTHENTICATE: %q", l)
	case "submission-login":
		steps := []string{"AUTH LOGIN", b64(user), b64(pass)}
		for i, s := range steps {
			if err := c.send(s); err != nil {
				return "", err
			}
			l, err := c.until("2", "3", "4", "5")
			if err != nil {
				return "", err
			}
			if i < 2 {
				if !strings.HasPrefix(l, "334 ") {
					return "", fmt.Errorf("AUTH LOGIN step %d: %q", i, l)
				}
				continue
			}
			switch {
			case strings.HasPrefix(l, "235 "):
				return "ok", nil
			case strings.HasPrefix(l, "535 "):
				return "failed", nil
			}
			return "", fmt.Errorf("AUTH LOGIN: %q", l)
		}
	}
	return "", fmt.Errorf("unknown mechanism %s", mech)
}

// TestPasswordSourcesTable: every password source (accounts, crypt from a
// shadow file of mkpasswd hashes, kerberos against a real MIT KDC) ×
// every password protocol of the real binary × {right password, wrong
// password, unknown user, locked account}.
func TestPasswordSourcesTable(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "acct", "acct-pw")
	createUser(t, dir, "alocked", "alocked-pw")
	mustMailmig(t, dir, "user", "lock", "alocked")

	shadow := filepath.Join(dir, "shadow")
	os.WriteFile(shadow, []byte(strings.Join([]string{
		"cuser:" + mkpasswdHash(t, "cuser-pw", "-m", "yescrypt") + ":19000:0:99999:7:::",
		"clocked:!" + mkpasswdHash(t, "clocked-pw", "-m", "sha512crypt") + ":19000:0:99999:7:::",
	}, "\n")+"\n"), 0o600)

	kdc := kdctest.Start(t, "TEST.MAILMIG")
	kdc.AddUser("kuser", "kuser-pw")
	kdc.AddUser("klocked", "klocked-pw")
	kdc.Kadmin("modprinc +disallow_all_tix klocked")
	keytab := kdc.AddServices(filepath.Join(dir, "mail.keytab"), "imap/localhost", "smtp/localhost", "sieve/localhost")

	s := startServeConfig(t, dir, fmt.Sprintf(`
[auth]
fail_delay = "20ms"
max_delay = "20ms"
max_failures_per_ip = 100000
max_failures_per_ip_user = 100000
sources = ["accounts", "crypt", "kerberos"]
rehash = false

[auth.crypt]
file = %q

[auth.kerberos]
realm = "TEST.MAILMIG"
krb5_conf = %q
keytab = %q

[imap]
listeners = [{ address = "127.0.0.1:0", tls = "implicit", trusted = false }]

[submission]
listeners = [{ address = "127.0.0.1:0", tls = "implicit", trusted = false }]

[managesieve]
listeners = [{ address = "127.0.0.1:0", tls = "starttls", trusted = false }]

[metrics]
listen = ""
`, shadow, kdc.Krb5Conf, keytab))
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	addrs := map[string]string{"imap": s.Addr("imaps"), "submission": s.Addr("submissions"), "managesieve": s.Addr("managesieve")}

	type cred struct{ user, pw, want string }
	sources := map[string][]cred{
		"accounts": {{"acct", "acct-pw", "ok"}, {"acct", "wrong", "failed"}, {"alocked", "alocked-pw", "failed"}},
		"crypt":    {{"cuser", "cuser-pw", "ok"}, {"cuser", "wrong", "failed"}, {"clocked", "clocked-pw", "failed"}},
		"kerberos": {{"kuser", "kuser-pw", "ok"}, {"kuser", "wrong", "failed"}, {"klocked", "klocked-pw", "failed"}},
		"none":     {{"nobody", "any-pw", "failed"}},
	}
	for _, mech := range []string{"imap-login", "imap-plain", "submission-plain", "submission-login", "managesieve-plain"} {
		proto := strings.SplitN(mech, "-", 2)[0]
		for _, src := range []string{"accounts", "crypt", "kerberos", "none"} {
			for _, c := range sources[src] {
				cl := &loginClient{proto: proto, addr: addrs[proto], local: "127.0.0.1", tls: tc}
				got, err := tryLogin(cl, mech, c.user, c.pw)
				if err != nil || got != c.want {
					t.Errorf("%s %s %s/%s: %q %v, want %s", mech, src, c.user, c.pw, got, err, c.want)
				}
			}
		}
	}
	log := s.Log()
	for _, want := range []string{"user=alocked mech=password reason=\"accounts: auth: account locked", "user=clocked mech=password reason=\"crypt: auth: account locked", "user=klocked mech=password reason=\"kerberos: auth: account locked", "user=nobody mech=password reason=\"unknown user\""} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, "kuser-pw") || strings.Contains(log, "cuser-pw") {
		t.Error("a password reached the log")
	}
	// Unlocked, the account's password works again.
	mustMailmig(t, dir, "user", "unlock", "alocked")
	cl := &loginClient{proto: "imap", addr: addrs["imap"], local: "127.0.0.1", tls: tc}
	if got, err := tryLogin(cl, "imap-login", "alocked", "alocked-pw"); err != nil || got != "ok" {
		t.Errorf("after unlock: %q %v", got, err)
	}
}

// TestUserImportFromShadow: `mailmig user import --from-shadow` copies
// mkpasswd hashes into accounts, lists every user it leaves out and every
// line it cannot read (exit 1), and the imported user logs in over IMAP
// with the old password.
func TestUserImportFromShadow(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "kept", "kept-pw")
	shadow := filepath.Join(dir, "shadow")
	os.WriteFile(shadow, []byte(strings.Join([]string{
		"alice:" + mkpasswdHash(t, "alice-pw", "-m", "yescrypt") + ":19000:0:99999:7:::",
		"bob:" + mkpasswdHash(t, "bob-pw", "-m", "sha256crypt") + ":19000:0:99999:7:::",
		"kept:" + mkpasswdHash(t, "other", "-m", "md5crypt") + ":19000:0:99999:7:::",
		"locked:!:19000:0:99999:7:::",
		"des:abJnggxhB/yWI:19000:0:99999:7:::",
		"short:line",
	}, "\n")+"\n"), 0o600)
	out, errOut, code := runMailmig(t, dir, "user", "import", "--from-shadow", shadow)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a line was not read)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"alice: imported (yescrypt)", "bob: imported (sha256-crypt)", "kept: has an account already, kept",
		"locked: locked or no password (line 4), not imported", "des: unsupported hash scheme (line 5), not imported", "2 imported"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, shadow+":6 (byte ") || !strings.Contains(errOut, "(user short): shadow line has 2 fields") {
		t.Errorf("bad line not reported with file, line and offset: %s", errOut)
	}
	// Naming users imports only them; a name not in the file fails.
	if out, _, code := runMailmig(t, dir, "user", "import", "--from-shadow", shadow, "bob", "ghost"); code != 1 || !strings.Contains(out, "ghost: not in") {
		t.Errorf("named import: exit %d\n%s", code, out)
	}

	s := startServeConfig(t, dir, `
[imap]
listeners = [{ address = "127.0.0.1:0", tls = "implicit", trusted = false }]

[metrics]
listen = ""
`)
	pem, _ := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	for _, c := range []struct{ user, pw, want string }{
		{"alice", "alice-pw", "ok"}, {"alice", "wrong", "failed"}, {"bob", "bob-pw", "ok"},
		{"kept", "kept-pw", "ok"}, {"kept", "other", "failed"}, {"alice", "alice-pw", "ok"},
	} {
		cl := &loginClient{proto: "imap", addr: s.Addr("imaps"), local: "127.0.0.1", tls: tc}
		if got, err := tryLogin(cl, "imap-login", c.user, c.pw); err != nil || got != c.want {
			t.Errorf("%s/%s: %q %v, want %s", c.user, c.pw, got, err, c.want)
		}
	}
}

// TestKerberosNeedsKeytab: a kerberos source without its keytab is a
// configuration error when serve starts, never a silent skip.
func TestKerberosNeedsKeytab(t *testing.T) {
	dir := t.TempDir()
	kdc := kdctest.Start(t, "TEST.MAILMIG")
	cfg := filepath.Join(dir, "test.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[auth]
sources = ["accounts", "kerberos"]
[auth.kerberos]
realm = "TEST.MAILMIG"
krb5_conf = %q
keytab = %q
`, kdc.Krb5Conf, filepath.Join(dir, "missing.keytab"))), 0o644)
	_, errOut, code := runMailmig(t, dir, "--config", cfg, "serve")
	if code == 0 || !strings.Contains(errOut, "[auth.kerberos]") || !strings.Contains(errOut, "keytab") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
