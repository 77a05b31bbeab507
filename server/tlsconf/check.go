package tlsconf

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Level says how bad a Finding is.
type Level int

// Levels of findings.
const (
	Warning Level = iota + 1
	Error
)

func (l Level) String() string {
	if l == Error {
		return "ERROR"
	}
	return "WARNING"
}

// Finding is one problem a client would have with the certificate.
type Finding struct {
	Level Level
	Msg   string // what a client would complain about
	Fix   string // what to do
}

func (f Finding) String() string {
	s := f.Level.String() + ": " + f.Msg
	if f.Fix != "" {
		s += " (fix: " + f.Fix + ")"
	}
	return s
}

// CheckOptions say what a certificate must satisfy.
type CheckOptions struct {
	// Names are the host names users are told (imap.example.org...).
	Names []string
	// CAFile is a PEM bundle of extra trusted roots ("" = the system
	// store only).
	CAFile string
	// Now is the time of the check (time.Now if zero).
	Now time.Time
	// ExpiryWarning is how long before expiry to warn (0 = 30 days).
	ExpiryWarning time.Duration
}

// HasErrors reports whether any finding is an Error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == Error {
			return true
		}
	}
	return false
}

// CheckFiles checks a certificate chain file and its key the way a client
// and a postmaster would: readable, the key matching the first
// certificate, the chain in order (leaf first, each certificate issued by
// the next) and complete up to a trusted root, the names covered, not
// expired and not expiring soon.
func CheckFiles(certFile, keyFile string, o CheckOptions) []Finding {
	var out []Finding
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return []Finding{{Error, fmt.Sprintf("cannot read the certificate %s: %v", certFile, err), "check [tls] cert and the file's owner and mode"}}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		out = append(out, Finding{Error, fmt.Sprintf("cannot read the key %s: %v", keyFile, err), "make it readable by the server's user (root:mailmig 0640)"})
	}
	chain, err := parseChain(certPEM)
	if err != nil {
		return append(out, Finding{Error, fmt.Sprintf("%s: %v", certFile, err), "the file must hold PEM certificates, the server's first"})
	}
	if keyPEM != nil {
		out = append(out, checkKey(certFile, chain, keyPEM)...)
	}
	return append(out, CheckChain(chain, o)...)
}

func parseChain(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no certificate")
	}
	return chain, nil
}

// checkKey: the key must belong to the first certificate. When it belongs
// to a later one, the order is wrong, not the key.
func checkKey(certFile string, chain []*x509.Certificate, keyPEM []byte) []Finding {
	var key crypto.PrivateKey
	for data := keyPEM; ; {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if k, err := parseKey(b.Bytes); err == nil {
			key = k
			break
		}
	}
	if key == nil {
		return []Finding{{Error, "the key file holds no private key Go can read (PKCS#1, PKCS#8 or EC)", "export the key as PEM"}}
	}
	for i, c := range chain {
		if publicKeyMatches(c.PublicKey, key) {
			if i == 0 {
				return nil
			}
			return []Finding{{Error, fmt.Sprintf("%s: intermediate before leaf: the key belongs to certificate %d (%s), but certificate 1 is %s", certFile, i+1, c.Subject.CommonName, describe(chain[0])),
				"put the server's own certificate first, then the intermediates in order (cat leaf.pem intermediate.pem > " + certFile + ")"}}
		}
	}
	return []Finding{{Error, "the private key does not match the certificate " + describe(chain[0]), "install the key the certificate was issued for"}}
}

func parseKey(der []byte) (crypto.PrivateKey, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(der)
}

func publicKeyMatches(pub crypto.PublicKey, key crypto.PrivateKey) bool {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	case *ecdsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	case ed25519.PrivateKey:
		return k.Public().(ed25519.PublicKey).Equal(pub)
	}
	return false
}

func describe(c *x509.Certificate) string {
	s := fmt.Sprintf("%q issued by %q", c.Subject.CommonName, c.Issuer.CommonName)
	if c.IsCA {
		s += " (a CA certificate)"
	}
	return s
}

// CheckChain checks a chain as sent to clients (leaf first).
func CheckChain(chain []*x509.Certificate, o CheckOptions) []Finding {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	warn := o.ExpiryWarning
	if warn == 0 {
		warn = 30 * 24 * time.Hour
	}
	var out []Finding
	leaf := chain[0]
	if leaf.IsCA && len(chain) > 1 && !chain[1].IsCA {
		out = append(out, Finding{Error, "intermediate before leaf: certificate 1 is " + describe(leaf) + " and certificate 2 is the server's " + describe(chain[1]),
			"put the server's own certificate first, then the intermediates in order"})
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			out = append(out, Finding{Error, fmt.Sprintf("certificate %d (%s) is not issued by certificate %d (%s): the chain is out of order or holds a wrong intermediate", i+1, chain[i].Subject.CommonName, i+2, chain[i+1].Subject.CommonName),
				"list leaf, then its issuer, then that one's issuer"})
			break
		}
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if o.CAFile != "" {
		pemData, err := os.ReadFile(o.CAFile)
		if err != nil {
			out = append(out, Finding{Error, fmt.Sprintf("cannot read the CA bundle %s: %v", o.CAFile, err), "check [tls] ca_file"})
		} else if !roots.AppendCertsFromPEM(pemData) {
			out = append(out, Finding{Error, "no certificate in the CA bundle " + o.CAFile, ""})
		}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now}); err != nil {
		var ua x509.UnknownAuthorityError
		switch {
		case errors.As(err, &ua) && len(chain) == 1 && !isSelfSigned(leaf):
			out = append(out, Finding{Error, "incomplete chain: only the server's certificate is sent; clients without the intermediate of " + fmt.Sprintf("%q", leaf.Issuer.CommonName) + " refuse it",
				"append the intermediate certificate(s) your CA gave you after the server's certificate in the cert file"})
		case errors.As(err, &ua):
			out = append(out, Finding{Error, "the chain does not lead to a trusted root (" + err.Error() + ")",
				"add the missing intermediates, or the private root to [tls] ca_file and to every client"})
		default:
			var ie x509.CertificateInvalidError
			if !(errors.As(err, &ie) && ie.Reason == x509.Expired) {
				out = append(out, Finding{Error, "clients will not trust the chain: " + err.Error(), ""})
			}
		}
	}
	for _, n := range o.Names {
		if n == "" {
			continue
		}
		if err := leaf.VerifyHostname(n); err != nil {
			out = append(out, Finding{Error, fmt.Sprintf("the certificate does not cover %s (it covers %s)", n, strings.Join(leaf.DNSNames, ", ")),
				"get a certificate whose names include " + n})
		}
	}
	for i, c := range chain {
		what := "the server's certificate"
		if i > 0 {
			what = fmt.Sprintf("certificate %d (%s)", i+1, c.Subject.CommonName)
		}
		switch {
		case now.After(c.NotAfter):
			out = append(out, Finding{Error, fmt.Sprintf("%s expired on %s", what, c.NotAfter.UTC().Format("2006-01-02")), "renew it"})
		case now.Before(c.NotBefore):
			out = append(out, Finding{Error, fmt.Sprintf("%s is not valid before %s", what, c.NotBefore.UTC().Format("2006-01-02 15:04")), "check the clock"})
		case c.NotAfter.Sub(now) < warn:
			out = append(out, Finding{Warning, fmt.Sprintf("%s expires on %s, in %d days", what, c.NotAfter.UTC().Format("2006-01-02"), int(c.NotAfter.Sub(now).Hours()/24)), "renew it now"})
		}
	}
	return out
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// ParseMinVersion maps "1.0".."1.3" to the tls constant.
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.0":
		return tls.VersionTLS10, nil
	case "1.1":
		return tls.VersionTLS11, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("tls: min_version %q: want 1.0, 1.1, 1.2 or 1.3", s)
}

// SelfSignedFile reports whether the first certificate in a PEM file is
// self-signed (the --data/--dev certificate).
func SelfSignedFile(certFile string) bool {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return false
	}
	chain, err := parseChain(data)
	return err == nil && len(chain) == 1 && isSelfSigned(chain[0])
}
