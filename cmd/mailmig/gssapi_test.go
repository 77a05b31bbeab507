package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/server/auth/kerberos/kdctest"
)

// gssapiWorld is a data directory, a real MIT KDC with users and the
// service principals in a keytab, and serve with GSSAPI on.
type gssapiWorld struct {
	dir, keytab string
	kdc, other  *kdctest.KDC
	srv         *served
	ca          string
}

func startGSSAPIWorld(t *testing.T, extra string) *gssapiWorld {
	t.Helper()
	return startGSSAPIWorldWith(t, "", `
[imap]
listeners = [{ address = "127.0.0.1:0", tls = "implicit", trusted = false }, { address = "127.0.0.1:0", tls = "starttls", trusted = false }]

[submission]
listeners = [{ address = "127.0.0.1:0", tls = "implicit", trusted = false }]

[managesieve]
listeners = [{ address = "127.0.0.1:0", tls = "starttls", trusted = false }]

[metrics]
listen = "127.0.0.1:0"
`+extra)
}

// startGSSAPIWorldWith starts the world with kerberos lines added to
// [auth.kerberos] and the rest of the configuration from tail.
func startGSSAPIWorldWith(t *testing.T, kerberos, tail string) *gssapiWorld {
	t.Helper()
	w := &gssapiWorld{dir: t.TempDir()}
	w.kdc = kdctest.Start(t, "TEST.MAILMIG")
	w.kdc.AddUser("alice", "alice-pw")
	w.kdc.AddUser("bob", "bob-pw")
	w.kdc.AddUser("alice/admin", "admin-pw")
	w.keytab = w.kdc.AddServices(filepath.Join(w.dir, "mail.keytab"), "imap/localhost", "smtp/localhost", "sieve/localhost")
	// A second realm whose imap/localhost key the keytab holds too (a
	// server shared with another realm): its users are not accepted.
	w.other = kdctest.Start(t, "OTHER.REALM")
	w.other.AddUser("alice", "other-pw")
	w.other.AddServices(w.keytab, "imap/localhost")
	w.srv = startServeConfig(t, w.dir, `
[auth.kerberos]
realm = "TEST.MAILMIG"
krb5_conf = "`+w.kdc.Krb5Conf+`"
keytab = "`+w.keytab+`"
gssapi = true
`+kerberos+tail)
	w.ca = filepath.Join(w.dir, "tls", "cert.pem")
	return w
}

// kinit gets user's TGT into a fresh credential cache and returns the
// environment that points clients at it.
func (w *gssapiWorld) kinit(t *testing.T, user, password string, extra ...string) []string {
	t.Helper()
	cc := filepath.Join(t.TempDir(), "ccache")
	if err := w.kdc.Kinit(user, password, cc, extra...); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "KRB5_CONFIG="+w.kdc.Krb5Conf, "KRB5CCNAME=FILE:"+cc)
}

func (w *gssapiWorld) pythonIMAP(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	host, port := splitHostPort(t, w.srv.Addr("imaps"))
	_ = host
	cmd := exec.Command("/usr/bin/python3", append([]string{"testdata/gssapi_imap.py", "localhost", port, w.ca}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func splitHostPort(t *testing.T, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q", addr)
	}
	return addr[:i], addr[i+1:]
}

// TestGSSAPIIMAPPython: python3-gssapi drives imaplib's AUTHENTICATE
// GSSAPI after kinit with a password into a temp ccache; the principal
// maps to the account; a two-component principal and an authorization
// identity of another user are refused.
func TestGSSAPIIMAPPython(t *testing.T) {
	w := startGSSAPIWorld(t, "")
	out, code := w.pythonIMAP(t, w.kinit(t, "alice", "alice-pw"))
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, "SELECT OK") {
		t.Fatalf("alice: exit %d\n%s\n%s", code, out, w.srv.Log())
	}
	if out, code := w.pythonIMAP(t, w.kinit(t, "alice", "alice-pw"), "bob"); code != 1 {
		t.Errorf("alice acting as bob: exit %d\n%s", code, out)
	}
	if out, code := w.pythonIMAP(t, w.kinit(t, "alice/admin", "admin-pw")); code != 1 {
		t.Errorf("alice/admin: exit %d\n%s", code, out)
	}
	// A ticket from a KDC that claims the realm but lacks the service's
	// real key (a spoofed KDC) is refused.
	spoof := kdctest.Start(t, "TEST.MAILMIG")
	spoof.AddUser("alice", "attacker-pw")
	spoof.AddServices(filepath.Join(spoof.Dir, "spoof.keytab"), "imap/localhost")
	cc := filepath.Join(t.TempDir(), "ccache")
	if err := spoof.Kinit("alice", "attacker-pw", cc); err != nil {
		t.Fatal(err)
	}
	spoofEnv := append(os.Environ(), "KRB5_CONFIG="+spoof.Krb5Conf, "KRB5CCNAME=FILE:"+cc)
	if out, code := w.pythonIMAP(t, spoofEnv); code != 1 {
		t.Errorf("spoofed KDC's ticket: exit %d\n%s", code, out)
	}
	// alice@OTHER.REALM with a valid ticket for imap/localhost@OTHER.REALM
	// (the keytab has its key) is not alice@TEST.MAILMIG.
	cc2 := filepath.Join(t.TempDir(), "ccache")
	if err := w.other.Kinit("alice", "other-pw", cc2); err != nil {
		t.Fatal(err)
	}
	otherEnv := append(os.Environ(), "KRB5_CONFIG="+w.other.Krb5Conf, "KRB5CCNAME=FILE:"+cc2)
	if out, code := w.pythonIMAP(t, otherEnv); code != 1 {
		t.Errorf("other realm's ticket: exit %d\n%s", code, out)
	}
	// Before TLS the capability list offers no GSSAPI (nor PLAIN).
	conn, err := net.Dial("tcp", w.srv.Addr("imap"))
	if err != nil {
		t.Fatal(err)
	}
	greeting, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.Contains(greeting, "STARTTLS") || strings.Contains(greeting, "AUTH=GSSAPI") {
		t.Errorf("greeting before TLS: %s", greeting)
	}
	log := w.srv.Log()
	for _, want := range []string{"AP-REQ refused", "realm OTHER.REALM not accepted", "user=alice mech=GSSAPI", "may not act as \\\"bob\\\"", "alice/admin@TEST.MAILMIG is not a user principal"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// cyrusTest runs one of cyrus' imtest/smtptest/sivtest with -m GSSAPI
// against addr, sending the commands in input after authentication.
func cyrusTest(t *testing.T, env []string, tool string, args []string, input string) (string, int) {
	t.Helper()
	cmd := exec.Command("/usr/lib/cyrus/bin/"+tool, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestGSSAPICyrusClients: cyrus imtest, smtptest and sivtest with -m
// GSSAPI (Cyrus SASL's GSSAPI plugin over MIT) log alice in over IMAP
// (implicit TLS and STARTTLS), submission and ManageSieve.
func TestGSSAPICyrusClients(t *testing.T) {
	w := startGSSAPIWorld(t, "")
	env := w.kinit(t, "alice", "alice-pw")
	_, imaps := splitHostPort(t, w.srv.Addr("imaps"))
	_, imap := splitHostPort(t, w.srv.Addr("imap"))
	_, subs := splitHostPort(t, w.srv.Addr("submissions"))
	_, sieve := splitHostPort(t, w.srv.Addr("managesieve"))
	for _, tc := range []struct {
		name, tool string
		args       []string
		input      string
		want       []string
	}{
		{"imaps", "imtest", []string{"-s", "-p", imaps, "-m", "GSSAPI", "-a", "alice", "-l", "0", "localhost"}, "a1 SELECT INBOX\r\na2 LOGOUT\r\n", []string{"Authenticated.", "a1 OK"}},
		{"imap-starttls", "imtest", []string{"-t", "", "-p", imap, "-m", "GSSAPI", "-a", "alice", "-l", "0", "localhost"}, "a1 SELECT INBOX\r\na2 LOGOUT\r\n", []string{"Authenticated.", "a1 OK"}},
		{"submissions", "smtptest", []string{"-s", "-p", subs, "-m", "GSSAPI", "-a", "alice", "-l", "0", "localhost"}, "QUIT\r\n", []string{"Authenticated."}},
		{"managesieve", "sivtest", []string{"-t", "", "-p", sieve, "-m", "GSSAPI", "-a", "alice", "-l", "0", "localhost"}, "LISTSCRIPTS\r\nLOGOUT\r\n", []string{"Authenticated."}},
	} {
		t0 := time.Now()
		out, code := cyrusTest(t, env, tc.tool, tc.args, tc.input)
		t.Logf("%s: %v", tc.name, time.Since(t0))
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("%s: exit %d, output lacks %q:\n%s", tc.name, code, want, out)
				break
			}
		}
	}
	if t.Failed() {
		t.Log(w.srv.Log())
	}
}

// TestGSSAPISieveConnect: sieve-connect (Authen::SASL::Perl::GSSAPI over
// the GSSAPI perl module) uploads and lists a script as alice with her
// Kerberos ticket.
func TestGSSAPISieveConnect(t *testing.T) {
	w := startGSSAPIWorld(t, "")
	env := w.kinit(t, "alice", "alice-pw")
	host, port := splitHostPort(t, w.srv.Addr("managesieve"))
	dir := t.TempDir()
	script := filepath.Join(dir, "keep.sieve")
	os.WriteFile(script, []byte("keep;\n"), 0o644)
	run := func(args ...string) (string, int) {
		// The server name must be what the ticket is for (sieve/localhost).
		_ = host
		full := append([]string{"--server", "localhost", "--port", port, "--nosrv", "--notlsverify", "--user", "alice", "--authmech", "GSSAPI"}, args...)
		cmd := exec.Command("sieve-connect", full...)
		cmd.Env = env
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := run("--upload", "--localsieve", script, "--remotesieve", "keep"); code != 0 {
		t.Fatalf("upload: exit %d\n%s\n%s", code, out, w.srv.Log())
	}
	if out, code := run("--list"); code != 0 || !strings.Contains(out, "keep") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if !strings.Contains(w.srv.Log(), "managesieve: authenticated") || !strings.Contains(w.srv.Log(), "user=alice mech=GSSAPI") {
		t.Error("no ManageSieve login in the log")
	}
}
