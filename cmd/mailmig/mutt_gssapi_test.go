package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMuttGSSAPI (issue 10): Debian's mutt (built --with-gss) in tmux,
// with imap_authenticators="gssapi" and no password, opens alice's INBOX
// over IMAPS with the ticket kinit put into a temporary ccache
// (KRB5CCNAME, KRB5_CONFIG of the test KDC); the server logs her GSSAPI
// login. Without a ticket mutt does not get in by GSSAPI.
func TestMuttGSSAPI(t *testing.T) {
	mutt := requireTool(t, "mutt")
	w := startGSSAPIWorld(t, "")
	// An account for alice (whose password mutt never uses) that
	// LMTP delivers to.
	createUser(t, w.dir, "alice", "account-pw-unused")
	// Two messages for alice, delivered over LMTP.
	c, err := net.Dial("tcp", w.srv.Addr("lmtp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	smtpStep(t, c, r, "", "220")
	smtpStep(t, c, r, "LHLO test\r\n", "250")
	for i := 1; i <= 2; i++ {
		smtpStep(t, c, r, "MAIL FROM:<bob@example.org>\r\n", "250")
		smtpStep(t, c, r, "RCPT TO:<alice@example.org>\r\n", "250")
		smtpStep(t, c, r, "DATA\r\n", "354")
		smtpStep(t, c, r, fmt.Sprintf("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: kerberised hello %d\r\nMessage-ID: <gss%d@example.org>\r\n\r\nbody %d\r\n.\r\n", i, i, i), "250")
	}
	// The certificate and the service principal name localhost.
	_, port := splitHostPort(t, w.srv.Addr("imaps"))
	run := func(t *testing.T, env []string) (*tmuxSession, string) {
		home := t.TempDir()
		rc := filepath.Join(home, "muttrc")
		os.WriteFile(rc, []byte(fmt.Sprintf(`set folder="imaps://localhost:%s/"
set spoolfile="+INBOX"
set imap_user="alice"
set imap_authenticators="gssapi"
set ssl_force_tls=yes
set ssl_ca_certificates_file="%s"
set mail_check=1000
set header_cache=""
set message_cachedir=""
set move=no
`, port, w.ca)), 0o600)
		full := append([]string{"HOME=" + home, "TERM=xterm", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, env...)
		return startTmux(t, full, mutt, "-n", "-d", "2", "-F", rc), home
	}
	muttDebug := func(t *testing.T, home string) string {
		dbg, _ := os.ReadFile(filepath.Join(home, ".muttdebug0"))
		return string(dbg)
	}

	t.Run("ticket", func(t *testing.T) {
		cc := filepath.Join(t.TempDir(), "ccache")
		if err := w.kdc.Kinit("alice", "alice-pw", cc); err != nil {
			t.Fatal(err)
		}
		tm, home := run(t, []string{"KRB5_CONFIG=" + w.kdc.Krb5Conf, "KRB5CCNAME=FILE:" + cc})
		scr := tm.waitForAny("kerberised hello 2", "authentication failed", "Login failed")
		t.Logf("mutt with a ticket:\n%s", grepLines(scr, "kerberised", "Mutt:"))
		if !strings.Contains(scr, "kerberised hello 1") || !strings.Contains(scr, "kerberised hello 2") {
			t.Fatalf("mutt's index does not show alice's messages:\n%s\n%s", scr, muttDebug(t, home))
		}
		tm.keys("q")
		if dbg := muttDebug(t, home); !strings.Contains(dbg, "AUTHENTICATE GSSAPI") {
			t.Errorf("mutt's debug log shows no AUTHENTICATE GSSAPI")
		}
		if log := w.srv.Log(); !strings.Contains(log, "user=alice mech=GSSAPI") {
			t.Errorf("server log shows no GSSAPI login of alice:\n%s", log)
		}
	})

	t.Run("no ticket", func(t *testing.T) {
		before := strings.Count(w.srv.Log(), "user=alice mech=GSSAPI")
		empty := filepath.Join(t.TempDir(), "no-ccache")
		tm, home := run(t, []string{"KRB5_CONFIG=" + w.kdc.Krb5Conf, "KRB5CCNAME=FILE:" + empty})
		scr := tm.waitForAny("GSSAPI authentication failed", "No authenticators available", "Login failed", "kerberised hello")
		// Let mutt finish whatever it tries next.
		time.Sleep(time.Second)
		scr = tm.screen()
		t.Logf("mutt without a ticket:\n%s", grepLines(scr, "Mutt:", "authent"))
		if strings.Contains(scr, "kerberised hello") {
			t.Fatalf("mutt got in without a ticket:\n%s", scr)
		}
		if n := strings.Count(w.srv.Log(), "user=alice mech=GSSAPI"); n != before {
			t.Fatalf("server logged a GSSAPI login of alice without a ticket")
		}
		if !strings.Contains(scr, "No authenticators available") && !strings.Contains(scr, "authentication failed") {
			t.Errorf("mutt shows no authentication failure:\n%s", scr)
		}
		// Debian's mutt runs "gssapi" through GNU SASL (--with-gsasl),
		// which finds no credentials in the empty cache.
		dbg := muttDebug(t, home)
		gss := grepLines(dbg, "GSS", "gss", "uthenticat")
		t.Logf("mutt's debug log, GSS lines:\n%s", gss)
		if !strings.Contains(gss, "Trying method gssapi") || !strings.Contains(gss, "No Kerberos credentials available") {
			t.Errorf("mutt's debug log does not show a GSSAPI attempt that lacked credentials:\n%s", gss)
		}
	})
}

// grepLines returns the lines of s containing any of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
