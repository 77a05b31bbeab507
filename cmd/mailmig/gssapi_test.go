package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mailmig/server/auth/kerberos/kdctest"
)

// gssapiWorld is a data directory, a real MIT KDC with users and the
// service principals in a keytab, and serve with GSSAPI on.
type gssapiWorld struct {
	dir, keytab string
	kdc         *kdctest.KDC
	srv         *served
	ca          string
}

func startGSSAPIWorld(t *testing.T, extra string) *gssapiWorld {
	t.Helper()
	w := &gssapiWorld{dir: t.TempDir()}
	w.kdc = kdctest.Start(t, "TEST.MAILMIG")
	w.kdc.AddUser("alice", "alice-pw")
	w.kdc.AddUser("bob", "bob-pw")
	w.kdc.AddUser("alice/admin", "admin-pw")
	w.keytab = w.kdc.AddServices(filepath.Join(w.dir, "mail.keytab"), "imap/localhost", "smtp/localhost", "sieve/localhost")
	w.srv = startServeConfig(t, w.dir, `
[auth.kerberos]
realm = "TEST.MAILMIG"
krb5_conf = "`+w.kdc.Krb5Conf+`"
keytab = "`+w.keytab+`"
gssapi = true

[imap]
listeners = [{ address = "127.0.0.1:0", tls = "implicit", trusted = false }, { address = "127.0.0.1:0", tls = "starttls", trusted = false }]

[submission]
listeners = [{ address = "127.0.0.1:0", tls = "implicit", trusted = false }]

[managesieve]
listeners = [{ address = "127.0.0.1:0", tls = "starttls", trusted = false }]

[metrics]
listen = "127.0.0.1:0"
`+extra)
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
	log := w.srv.Log()
	for _, want := range []string{"user=alice mech=GSSAPI", "may not act as \\\"bob\\\"", "alice/admin@TEST.MAILMIG is not a user principal"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
