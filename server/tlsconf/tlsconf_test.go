package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestSelfSignedHandshake(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	if err := EnsureSelfSigned(cert, key, "mail.test"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(cert)
	if err := EnsureSelfSigned(cert, key); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(cert); string(after) != string(before) {
		t.Fatal("existing certificate was replaced")
	}
	r, err := Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(before)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "mail.test"})
	if err != nil {
		t.Fatalf("client does not trust the generated certificate: %v", err)
	}
	c.Close()
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode().Perm())
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load("/nonexistent/c.pem", "/nonexistent/k.pem"); err == nil {
		t.Fatal("no error for missing files")
	}
}
