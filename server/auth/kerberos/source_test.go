package kerberos

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"mailmig/server/auth"
	"mailmig/server/auth/kerberos/kdctest"
	"mailmig/state"
)

const realm = "TEST.MAILMIG"

// TestSourceAgainstMITKDC checks passwords against a real MIT KDC:
// right, wrong, unknown, locked (disallow_all_tix), the password-less
// status probe, and the configuration errors.
func TestSourceAgainstMITKDC(t *testing.T) {
	kdc := kdctest.Start(t, realm)
	kdc.AddUser("alice", "alice-pw")
	kdc.AddUser("locked", "locked-pw")
	kdc.Kadmin("modprinc +disallow_all_tix locked")
	kt := kdc.AddServices(filepath.Join(kdc.Dir, "mail.keytab"), "imap/localhost", "smtp/localhost", "sieve/localhost")

	src, err := New(realm, kdc.Krb5Conf, kt, "imap/localhost")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		user, pw string
		want     error
	}{
		{"alice", "alice-pw", nil},
		{"alice", "wrong", state.ErrBadPassword},
		{"nobody", "alice-pw", auth.ErrUnknownUser},
		{"locked", "locked-pw", auth.ErrLocked},
		{"alice@OTHER.REALM", "alice-pw", auth.ErrUnknownUser},
		{"imap/localhost", "x", auth.ErrUnknownUser},
	} {
		err := src.Verify(ctx, tc.user, tc.pw)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Verify(%s, %s) = %v, want %v", tc.user, tc.pw, err, tc.want)
		}
	}
	for _, tc := range []struct {
		user         string
		known, login bool
	}{{"alice", true, true}, {"nobody", false, false}, {"locked", true, false}} {
		known, login, reason, err := src.Status(ctx, tc.user)
		if err != nil || known != tc.known || login != tc.login {
			t.Errorf("Status(%s) = %v %v %q %v", tc.user, known, login, reason, err)
		}
	}
	// The probe must not count as a failed login at the KDC.
	if err := src.Verify(ctx, "alice", "alice-pw"); err != nil {
		t.Errorf("alice after the probes: %v", err)
	}

	// Configuration errors: no keytab, or a keytab without our key.
	if _, err := New(realm, kdc.Krb5Conf, filepath.Join(kdc.Dir, "missing.keytab"), "imap/localhost"); err == nil || !strings.Contains(err.Error(), "keytab") {
		t.Errorf("missing keytab: %v", err)
	}
	if _, err := New(realm, kdc.Krb5Conf, kt, "pop/localhost"); err == nil || !strings.Contains(err.Error(), "no key for pop/localhost") {
		t.Errorf("keytab without the service: %v", err)
	}
}

// TestSpoofedKDC: a second KDC for the same realm that accepts the
// attacker's password for alice but does not know the service key (or
// has the service with another key) must not let alice in.
func TestSpoofedKDC(t *testing.T) {
	real := kdctest.Start(t, realm)
	kt := real.AddServices(filepath.Join(real.Dir, "mail.keytab"), "imap/localhost")

	for _, withService := range []bool{false, true} {
		spoof := kdctest.Start(t, realm)
		spoof.AddUser("alice", "attacker-pw")
		if withService {
			spoof.Kadmin("addprinc -randkey imap/localhost")
		}
		src, err := New(realm, spoof.Krb5Conf, kt, "imap/localhost")
		if err != nil {
			t.Fatal(err)
		}
		err = src.Verify(context.Background(), "alice", "attacker-pw")
		if err == nil || errors.Is(err, auth.ErrUnknownUser) || !strings.Contains(err.Error(), "KDC not verified") {
			t.Errorf("spoofed KDC (service known: %v): %v", withService, err)
		}
	}
}

// BenchmarkKerberosLogin: right-password logins a second against a real
// MIT KDC on loopback (AS exchange with pre-authentication, TGS exchange
// for imap/localhost, keytab check). Run: make bench-auth.
func BenchmarkKerberosLogin(b *testing.B) {
	kdc := kdctest.Start(b, realm)
	kdc.AddUser("k", "k-pw")
	kt := kdc.AddServices(filepath.Join(kdc.Dir, "mail.keytab"), "imap/localhost")
	src, err := New(realm, kdc.Krb5Conf, kt, "imap/localhost")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := src.Verify(ctx, "k", "k-pw"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// TestKDCDownStopsChain: with the KDC unreachable the kerberos source
// answers an internal error, and a chain with kerberos first does not fall
// through to a later source (fail closed).
func TestKDCDownStopsChain(t *testing.T) {
	kdc := kdctest.Start(t, realm)
	kdc.AddUser("alice", "alice-pw")
	kt := kdc.AddServices(filepath.Join(kdc.Dir, "mail.keytab"), "imap/localhost")
	src, err := New(realm, kdc.Krb5Conf, kt, "imap/localhost")
	if err != nil {
		t.Fatal(err)
	}
	kdc.Stop()
	later := &fixedSource{}
	chain := &auth.Chain{Sources: []auth.Source{src, later}}
	err = chain.Authenticate(context.Background(), "alice", "alice-pw")
	if err == nil || errors.Is(err, state.ErrBadPassword) || errors.Is(err, auth.ErrUnknownUser) || !strings.HasPrefix(err.Error(), "kerberos: ") {
		t.Errorf("KDC down: %v", err)
	}
	if later.asked {
		t.Error("the chain fell through to the next source while the KDC was down")
	}
	if _, err := chain.Status(context.Background(), "alice"); err == nil {
		t.Error("Status with the KDC down: no error")
	}
}

type fixedSource struct{ asked bool }

func (*fixedSource) Name() string { return "fixed" }
func (f *fixedSource) Verify(context.Context, string, string) error {
	f.asked = true
	return nil
}
func (f *fixedSource) Status(context.Context, string) (bool, bool, string, error) {
	f.asked = true
	return true, true, "", nil
}
