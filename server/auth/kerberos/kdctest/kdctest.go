// Package kdctest starts a real MIT Kerberos KDC (Debian's krb5-kdc,
// kdb5_util and kadmin.local) for tests: its own krb5.conf, kdc.conf and
// database in a temporary directory, a test realm, listening on a
// loopback port, stopped by PID when the test ends.
package kdctest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KDC is a running MIT KDC.
type KDC struct {
	Realm string
	Dir   string
	Port  int
	// Krb5Conf is a client configuration naming this KDC (TCP only,
	// no DNS, no reverse lookups).
	Krb5Conf string
	kdcConf  string
	cmd      *exec.Cmd
	done     chan struct{}
	t        testing.TB
}

// Stop ends the KDC (by PID) and waits for it; Start's cleanup calls it
// too.
func (k *KDC) Stop() {
	select {
	case <-k.done:
		return
	default:
	}
	k.cmd.Process.Kill()
	<-k.done
}

// freePort finds a port free for both TCP and UDP on 127.0.0.1.
func freePort(t testing.TB) int {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// Start creates the realm's database and starts krb5kdc. The KDC is
// stopped (by PID) in t.Cleanup.
func Start(t testing.TB, realm string) *KDC {
	t.Helper()
	dir := t.TempDir()
	k := &KDC{Realm: realm, Dir: dir, Port: freePort(t), t: t}
	k.Krb5Conf = filepath.Join(dir, "krb5.conf")
	k.kdcConf = filepath.Join(dir, "kdc.conf")
	krb5 := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_realm = false
	dns_lookup_kdc = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	ticket_lifetime = 1h
	default_ccache_name = FILE:%[3]s/ccache
	default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
	%[1]s = {
		kdc = 127.0.0.1:%[2]d
	}

[domain_realm]
	localhost = %[1]s
`, realm, k.Port, dir)
	kdc := fmt.Sprintf(`[kdcdefaults]
	kdc_ports = 127.0.0.1:%[2]d
	kdc_tcp_listen = 127.0.0.1:%[2]d
	kdc_listen = 127.0.0.1:%[2]d

[realms]
	%[1]s = {
		database_name = %[3]s/principal
		key_stash_file = %[3]s/stash
		acl_file = %[3]s/kadm5.acl
		max_life = 10h
		max_renewable_life = 1d
		default_principal_flags = +preauth
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
		master_key_type = aes256-cts-hmac-sha1-96
	}

[logging]
	kdc = FILE:%[3]s/kdc.log
`, realm, k.Port, dir)
	for name, text := range map[string]string{k.Krb5Conf: krb5, k.kdcConf: kdc, filepath.Join(dir, "kadm5.acl"): ""} {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k.run("kdb5_util", "create", "-s", "-r", realm, "-P", "master-"+realm)
	k.cmd = exec.Command("krb5kdc", "-n", "-r", realm, "-P", filepath.Join(dir, "kdc.pid"))
	k.cmd.Env = k.Env()
	out, err := os.Create(filepath.Join(dir, "krb5kdc.out"))
	if err != nil {
		t.Fatal(err)
	}
	k.cmd.Stdout, k.cmd.Stderr = out, out
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("krb5kdc: %v", err)
	}
	done := make(chan struct{})
	go func() { k.cmd.Wait(); close(done) }()
	k.done = done
	t.Cleanup(func() {
		k.Stop()
		out.Close()
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", k.Port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "krb5kdc.out"))
			l, _ := os.ReadFile(filepath.Join(dir, "kdc.log"))
			t.Fatalf("krb5kdc exited: %s %s", b, l)
		default:
		}
		if i > 100 {
			t.Fatalf("krb5kdc does not listen on %d", k.Port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return k
}

// Env is the environment that points MIT tools at this KDC.
func (k *KDC) Env() []string {
	return append(os.Environ(), "KRB5_CONFIG="+k.Krb5Conf, "KRB5_KDC_PROFILE="+k.kdcConf,
		"KRB5CCNAME=FILE:"+filepath.Join(k.Dir, "ccache"))
}

func (k *KDC) run(name string, args ...string) string {
	k.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = k.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		k.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Kadmin runs one kadmin.local query against the database.
func (k *KDC) Kadmin(query string) string {
	k.t.Helper()
	return k.run("kadmin.local", "-r", k.Realm, "-q", query)
}

// AddUser creates user@REALM with a password.
func (k *KDC) AddUser(user, password string) {
	k.t.Helper()
	k.Kadmin(fmt.Sprintf("addprinc -pw %s %s", password, user))
}

// AddServices creates service principals (e.g. "imap/localhost") with
// random keys and exports them to a new keytab, whose path it returns.
func (k *KDC) AddServices(keytab string, principals ...string) string {
	k.t.Helper()
	for _, p := range principals {
		k.Kadmin("addprinc -randkey " + p)
	}
	k.Kadmin(fmt.Sprintf("ktadd -k %s %s", keytab, strings.Join(principals, " ")))
	return keytab
}

// Kinit gets a TGT for user into the credential cache ccache (a path).
func (k *KDC) Kinit(user, password, ccache string, extra ...string) error {
	args := append([]string{"-c", "FILE:" + ccache}, extra...)
	args = append(args, user+"@"+k.Realm)
	cmd := exec.Command("kinit", args...)
	cmd.Env = k.Env()
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kinit %s: %v: %s", user, err, out)
	}
	return nil
}
