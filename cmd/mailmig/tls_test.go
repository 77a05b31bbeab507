package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPKI is a real CA → intermediate → server certificate chain made in
// the test, as a site's CA would issue it.
type testPKI struct {
	dir               string
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
	rootPEM, interPEM []byte
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	now := time.Now()
	p.rootKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, rootT, rootT, &p.rootKey.PublicKey, p.rootKey)
	must(t, err)
	p.root, _ = x509.ParseCertificate(der)
	p.rootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	p.interKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Intermediate CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err = x509.CreateCertificate(rand.Reader, interT, p.root, &p.interKey.PublicKey, p.rootKey)
	must(t, err)
	p.inter, _ = x509.ParseCertificate(der)
	p.interPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	must(t, os.WriteFile(filepath.Join(p.dir, "root.pem"), p.rootPEM, 0o644))
	must(t, os.WriteFile(filepath.Join(p.dir, "inter.pem"), p.interPEM, 0o644))
	return p
}

// leaf issues a server certificate for names valid for d, and returns
// its PEM and its key's PEM.
func (p *testPKI) leaf(t *testing.T, names []string, d time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(d), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.inter, &k.PublicKey, p.interKey)
	must(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestTLSConfigCheck is issue 9 item 6 for `mailmig config check`: a
// complete chain passes; a leaf-only chain, a chain in the wrong order
// ("intermediate before leaf", not a key mismatch), a name users are told
// but not covered, and a wrong key are errors; a certificate expiring in
// 10 days is a warning. openssl verify judges the same chains.
func TestTLSConfigCheck(t *testing.T) {
	requireTool(t, "openssl")
	p := newTestPKI(t)
	dir := t.TempDir()
	names := []string{"mail.example.org", "imap.example.org"}
	leaf, key := p.leaf(t, names, 365*24*time.Hour)
	_, otherKey := p.leaf(t, names, 365*24*time.Hour)
	soon, soonKey := p.leaf(t, names, 10*24*time.Hour)
	narrow, narrowKey := p.leaf(t, []string{"mail.example.org"}, 365*24*time.Hour)
	check := func(name string, certPEM, keyPEM []byte) (string, int) {
		t.Helper()
		cf, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		must(t, os.WriteFile(cf, certPEM, 0o644))
		must(t, os.WriteFile(kf, keyPEM, 0o600))
		conf := filepath.Join(dir, name+".toml")
		must(t, os.WriteFile(conf, []byte(`[server]
hostname = "mail.example.org"
[client]
imap_host = "imap.example.org"
submission_host = "mail.example.org"
[tls]
cert = "`+cf+`"
key = "`+kf+`"
ca_file = "`+filepath.Join(p.dir, "root.pem")+`"
`), 0o644))
		out, errs, code := runMailmig(t, "", "config", "check", conf)
		return out + errs, code
	}
	for _, tc := range []struct {
		name      string
		cert      []byte
		key       []byte
		code      int
		want      string
		not       string
		opensslOK bool
	}{
		{"good", cat(leaf, p.interPEM), key, 0, "OK", "ERROR", true},
		{"leafonly", leaf, key, 1, "incomplete chain", "does not match", false},
		{"order", cat(p.interPEM, leaf), key, 1, "intermediate before leaf", "does not match", true},
		{"names", cat(narrow, p.interPEM), narrowKey, 1, "does not cover imap.example.org", "", true},
		{"wrongkey", cat(leaf, p.interPEM), otherKey, 1, "private key does not match", "", true},
		{"soon", cat(soon, p.interPEM), soonKey, 0, "WARNING: the server's certificate expires on", "ERROR", true},
	} {
		out, code := check(tc.name, tc.cert, tc.key)
		if code != tc.code || !strings.Contains(out, tc.want) || (tc.not != "" && strings.Contains(out, tc.not)) {
			t.Errorf("%s: exit %d, want %d with %q (and not %q):\n%s", tc.name, code, tc.code, tc.want, tc.not, out)
		}
		// openssl's verdict on the chain as sent (leaf first, the rest as
		// untrusted intermediates).
		certs := splitPEM(tc.cert)
		leafFile := filepath.Join(dir, tc.name+"-leaf.pem")
		first := certs[0]
		if tc.name == "order" {
			first = certs[1] // what the key belongs to: openssl is told the real leaf
		}
		must(t, os.WriteFile(leafFile, first, 0o644))
		args := []string{"verify", "-CAfile", filepath.Join(p.dir, "root.pem")}
		if len(certs) > 1 {
			untrusted := filepath.Join(dir, tc.name+"-untrusted.pem")
			must(t, os.WriteFile(untrusted, cat(certs...), 0o644))
			args = append(args, "-untrusted", untrusted)
		}
		err := exec.Command("openssl", append(args, leafFile)...).Run()
		if (err == nil) != tc.opensslOK {
			t.Errorf("%s: openssl verify ok=%v, want %v", tc.name, err == nil, tc.opensslOK)
		}
	}
}

func splitPEM(data []byte) [][]byte {
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		out = append(out, pem.EncodeToMemory(b))
	}
}

// TestTLSServeAndTLSCheck: serve logs a leaf-only chain loudly at start
// and on SIGHUP, `mailmig tls check` connects with STARTTLS (imap, smtp,
// sieve) and implicit TLS, prints the chain and says what a client would
// say; tls.min_version = "1.3" refuses a TLS 1.2 client.
func TestTLSServeAndTLSCheck(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	leaf, key := p.leaf(t, []string{"localhost", "imap.example.org"}, 365*24*time.Hour)
	must(t, os.MkdirAll(filepath.Join(dir, "tls"), 0o700))
	certFile, keyFile := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	must(t, os.WriteFile(certFile, leaf, 0o644)) // leaf only
	must(t, os.WriteFile(keyFile, key, 0o600))
	cfg := `[tls]
min_version = "1.3"
ca_file = "` + filepath.Join(p.dir, "root.pem") + `"
[imap]
listeners = [
  { address = "127.0.0.1:0", tls = "starttls", trusted = false },
  { address = "127.0.0.1:0", tls = "implicit", trusted = false },
]
[submission]
listeners = [
  { address = "127.0.0.1:0", tls = "starttls", trusted = false },
]
[managesieve]
listeners = [
  { address = "127.0.0.1:0", tls = "starttls", trusted = false },
]
`
	s := startServeConfig(t, dir, cfg)
	waitLog(t, s, "mailmig serving")
	if !strings.Contains(s.Log(), `level=ERROR msg="TLS certificate: clients will complain" problem="incomplete chain`) {
		t.Errorf("serve did not complain about the leaf-only chain:\n%s", s.Log())
	}
	tlsCheck := func(args ...string) (string, int) {
		t.Helper()
		out, errs, code := runMailmig(t, "", append([]string{"tls", "check", "--ca-file", filepath.Join(p.dir, "root.pem")}, args...)...)
		return out + errs, code
	}
	out, code := tlsCheck("--starttls", "imap", "--name", "imap.example.org", s.Addr("imap"))
	if code != 1 || !strings.Contains(out, "incomplete chain") || !strings.Contains(out, `subject "localhost"`) {
		t.Errorf("tls check of the leaf-only server: exit %d\n%s", code, out)
	}

	// The fixed chain, applied by SIGHUP.
	must(t, os.WriteFile(certFile, cat(leaf, p.interPEM), 0o644))
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, s, "configuration reloaded")
	for _, tc := range []struct{ proto, addr string }{
		{"imap", s.Addr("imap")}, {"smtp", s.Addr("submission")}, {"sieve", s.Addr("managesieve")}, {"", s.addrs["imaps"][0]},
	} {
		args := []string{"--name", "imap.example.org", tc.addr}
		if tc.proto != "" {
			args = append([]string{"--starttls", tc.proto}, args...)
		}
		out, code := tlsCheck(args...)
		if code != 0 || !strings.Contains(out, "OK: a client would accept") || !strings.Contains(out, `issuer  "Test Intermediate CA"`) || !strings.Contains(out, "TLS 1.3") {
			t.Errorf("tls check %s %s after the fix: exit %d\n%s", tc.proto, tc.addr, code, out)
		}
	}
	out, code = tlsCheck("--name", "other.example.org", s.addrs["imaps"][0])
	if code != 1 || !strings.Contains(out, "does not cover other.example.org") {
		t.Errorf("tls check for a name not covered: exit %d\n%s", code, out)
	}
	// min_version 1.3: a TLS 1.2 client is refused.
	c, err := tls.Dial("tcp", s.addrs["imaps"][0], &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err == nil {
		c.Close()
		t.Errorf("a TLS 1.2 client got in with tls.min_version = 1.3")
	}
}
