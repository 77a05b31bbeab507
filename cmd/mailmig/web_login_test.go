package main

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/server/auth/kerberos/kdctest"
)

// webKerberosWorld is serve with the web page's Kerberos single sign-on
// on, a real MIT KDC, and HTTP/localhost in the keytab.
type webKerberosWorld struct {
	kdc  *kdctest.KDC
	srv  *served
	base string // https://localhost:PORT
}

func startWebKerberos(t *testing.T) *webKerberosWorld {
	t.Helper()
	dir := t.TempDir()
	w := &webKerberosWorld{kdc: kdctest.Start(t, "TEST.MAILMIG")}
	w.kdc.AddUser("alice", "alice-pw")
	w.kdc.AddUser("alice/admin", "admin-pw")
	keytab := w.kdc.AddServices(filepath.Join(dir, "http.keytab"), "HTTP/localhost")
	w.srv = startServeConfig(t, dir, `
[auth.kerberos]
realm = "TEST.MAILMIG"
krb5_conf = "`+w.kdc.Krb5Conf+`"
keytab = "`+keytab+`"

[web]
kerberos = true

[metrics]
listen = "127.0.0.1:0"
`)
	_, port := splitHostPort(t, w.srv.Addr("web"))
	w.base = "https://localhost:" + port
	return w
}

// kinit gets user's TGT into a fresh ccache; the environment points
// Kerberos clients at it and at the test's krb5.conf.
func (w *webKerberosWorld) kinit(t *testing.T, kdc *kdctest.KDC, user, password string) []string {
	t.Helper()
	cc := filepath.Join(t.TempDir(), "ccache")
	if err := kdc.Kinit(user, password, cc); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "KRB5_CONFIG="+kdc.Krb5Conf, "KRB5CCNAME=FILE:"+cc)
}

// curl runs curl (-k: the --data world's certificate is self-signed)
// and returns the status code, the response headers (lower-cased: HTTP/2
// sends them so) and the body.
func (w *webKerberosWorld) curl(t *testing.T, env []string, args ...string) (code, headers, body string) {
	t.Helper()
	d := t.TempDir()
	hdr, out := filepath.Join(d, "headers"), filepath.Join(d, "body")
	cmd := exec.Command(requireTool(t, "curl"), append([]string{"-sk", "--max-time", "20", "-D", hdr, "-o", out, "-w", "%{http_code}"}, args...)...)
	cmd.Env = env
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	h, _ := os.ReadFile(hdr)
	bd, _ := os.ReadFile(out)
	return string(b), strings.ToLower(string(h)), string(bd)
}

// TestWebKerberosCurl: single sign-on to the page with curl --negotiate
// (HTTP Negotiate, RFC 4559) and tickets from a real MIT KDC: without a
// ticket the password form and a Negotiate challenge; with alice's
// ticket a session for alice; a principal that is no user, and a ticket
// from a KDC that does not know the service key (a spoofed KDC), get no
// session.
func TestWebKerberosCurl(t *testing.T) {
	w := startWebKerberos(t)
	url := w.base + "/login/kerberos"

	code, _, body := w.curl(t, os.Environ(), w.base+"/login")
	if code != "200" || !strings.Contains(body, `id="kerberos"`) {
		t.Fatalf("login page: %s, no Kerberos link:\n%s", code, body)
	}
	code, hdr, body := w.curl(t, os.Environ(), url)
	if code != "401" || !strings.Contains(hdr, "www-authenticate: negotiate") || !strings.Contains(body, "did not offer a Kerberos ticket") {
		t.Fatalf("without a ticket: %s\n%s\n%s", code, hdr, body)
	}

	env := w.kinit(t, w.kdc, "alice", "alice-pw")
	jar := filepath.Join(t.TempDir(), "cookies")
	code, hdr, _ = w.curl(t, env, "--negotiate", "-u", ":", "-c", jar, url)
	if code != "303" || !strings.Contains(hdr, "location: /") || !strings.Contains(hdr, "set-cookie:") {
		t.Fatalf("alice's ticket: %s\n%s\n%s", code, hdr, w.srv.Log())
	}
	code, _, body = w.curl(t, os.Environ(), "-b", jar, w.base+"/")
	if code != "200" || !strings.Contains(body, "alice") || !strings.Contains(body, `id="quota"`) {
		t.Fatalf("home with alice's session: %s\n%s", code, body)
	}

	admin := w.kinit(t, w.kdc, "alice/admin", "admin-pw")
	code, hdr, body = w.curl(t, admin, "--negotiate", "-u", ":", url)
	if code != "403" || strings.Contains(hdr, "set-cookie:") || !strings.Contains(body, "does not name an account") {
		t.Errorf("alice/admin: %s\n%s\n%s", code, hdr, body)
	}

	spoof := kdctest.Start(t, "TEST.MAILMIG")
	spoof.AddUser("alice", "attacker-pw")
	spoof.AddServices(filepath.Join(spoof.Dir, "spoof.keytab"), "HTTP/localhost")
	code, hdr, _ = w.curl(t, w.kinit(t, spoof, "alice", "attacker-pw"), "--negotiate", "-u", ":", url)
	if code != "401" || strings.Contains(hdr, "set-cookie:") {
		t.Errorf("spoofed KDC's ticket: %s\n%s", code, hdr)
	}
	log := w.srv.Log()
	for _, want := range []string{`msg="web: login" component=web user=alice`, "method=kerberos", "kerberos login refused"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q\n%s", want, log)
		}
	}
}

// TestWebPasswordSources: the page's login asks the same password
// sources as IMAP, in the configured order: mailmig's own account, a
// yescrypt hash from a shadow file made by Debian's mkpasswd, and a
// Kerberos password checked against a real MIT KDC; wrong passwords,
// locked accounts and unknown users get no session.
func TestWebPasswordSources(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "acct", "acct-pw")
	shadow := filepath.Join(dir, "shadow")
	if err := os.WriteFile(shadow, []byte(
		"cuser:"+mkpasswdHash(t, "cuser-pw", "-m", "yescrypt")+":19000:0:99999:7:::\n"+
			"clocked:!"+mkpasswdHash(t, "clocked-pw", "-m", "sha512crypt")+":19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kdc := kdctest.Start(t, "TEST.MAILMIG")
	kdc.AddUser("kuser", "kuser-pw")
	keytab := kdc.AddServices(filepath.Join(dir, "mail.keytab"), "imap/localhost")
	s := startServeConfig(t, dir, `
[auth]
fail_delay = "20ms"
max_delay = "20ms"
sources = ["accounts", "crypt", "kerberos"]
rehash = false

[auth.crypt]
file = "`+shadow+`"

[auth.kerberos]
realm = "TEST.MAILMIG"
krb5_conf = "`+kdc.Krb5Conf+`"
keytab = "`+keytab+`"

[metrics]
listen = ""
`)
	base := "https://" + s.Addr("web")
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{
		{"acct", "acct-pw", true}, {"acct", "wrong", false},
		{"cuser", "cuser-pw", true}, {"cuser", "wrong", false}, {"clocked", "clocked-pw", false},
		{"kuser", "kuser-pw", true}, {"kuser", "wrong", false},
		{"nobody", "any-pw", false},
	} {
		c := c
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
		resp, err := client.PostForm(base+"/login", url.Values{"user": {c.user}, "password": {c.pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		session := false
		for _, ck := range resp.Cookies() {
			session = session || (ck.Name == "__Host-mailmig" && ck.Value != "")
		}
		if got := resp.StatusCode == http.StatusSeeOther && session; got != c.ok {
			t.Errorf("%s/%s: %s (session %v), want ok=%v", c.user, c.pw, resp.Status, session, c.ok)
		}
	}
	if log := s.Log(); strings.Contains(log, "cuser-pw") || strings.Contains(log, "kuser-pw") {
		t.Error("a password reached the log")
	}
}
