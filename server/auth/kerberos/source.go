// Package kerberos checks passwords against a Kerberos KDC the way
// pam_krb5 does: an AS exchange for user@REALM with the password, then a
// service ticket for the server's own principal, which must decrypt with
// the key in the server's keytab. Only the real KDC knows that key, so a
// spoofed KDC that accepts any password is refused.
//
// It uses github.com/jcmturner/gokrb5/v8 (v8.4.4). gokrb5 reports KDC
// errors as text only; classify reads the RFC 4120 error names from it.
package kerberos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"mailmig/server/auth"
	"mailmig/state"
)

// Source is the "kerberos" password source.
type Source struct {
	Realm string
	// Service is the server's own principal without realm
	// ("imap/mail.example.org"); its key must be in Keytab.
	Service string
	Config  *krbconfig.Config
	Keytab  *keytab.Keytab

	mu sync.Mutex
}

// New loads krb5.conf and the keytab. A keytab that is missing or lacks
// the service's key is a configuration error: without it the KDC cannot
// be verified.
func New(realm, krb5conf, keytabPath, service string) (*Source, error) {
	cfg, err := krbconfig.Load(krb5conf)
	if err != nil {
		return nil, fmt.Errorf("kerberos: %s: %w", krb5conf, err)
	}
	if _, err := os.Stat(keytabPath); err != nil {
		return nil, fmt.Errorf("kerberos: keytab (needed to verify the KDC): %w", err)
	}
	kt, err := keytab.Load(keytabPath)
	if err != nil {
		return nil, fmt.Errorf("kerberos: keytab %s: %w", keytabPath, err)
	}
	sname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, service)
	found := false
	for _, e := range kt.Entries {
		if e.Principal.Realm == realm && principalEqual(e.Principal.Components, sname.NameString) {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("kerberos: keytab %s has no key for %s@%s (needed to verify the KDC)", keytabPath, service, realm)
	}
	return &Source{Realm: realm, Service: service, Config: cfg, Keytab: kt}, nil
}

func principalEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Name implements auth.Source.
func (*Source) Name() string { return "kerberos" }

// validUser refuses names that would be read as another principal.
func validUser(user string) bool {
	return user != "" && !strings.ContainsAny(user, "@/\\\x00 ")
}

// Verify implements auth.Source.
func (s *Source) Verify(ctx context.Context, user, password string) error {
	if !validUser(user) {
		return auth.ErrUnknownUser
	}
	if password == "" {
		return state.ErrBadPassword
	}
	cl := client.NewWithPassword(user, s.Realm, password, s.Config, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return classify(err)
	}
	tkt, _, err := cl.GetServiceTicket(s.Service)
	if err != nil {
		// The KDC accepted the password but cannot issue a ticket for
		// our own principal: not the site's KDC, or misconfigured.
		return fmt.Errorf("kerberos: no service ticket for %s (KDC not verified): %v", s.Service, err)
	}
	sname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, s.Service)
	if err := tkt.DecryptEncPart(s.Keytab, &sname); err != nil {
		return fmt.Errorf("kerberos: service ticket for %s does not decrypt with the keytab: KDC not verified (spoofed?): %v", s.Service, err)
	}
	enc := tkt.DecryptedEncPart
	if enc.CRealm != s.Realm || len(enc.CName.NameString) != 1 || enc.CName.NameString[0] != user {
		return fmt.Errorf("kerberos: service ticket names %s@%s, not %s@%s", enc.CName.PrincipalNameString(), enc.CRealm, user, s.Realm)
	}
	return nil
}

// classify maps a gokrb5 login error to the auth package's errors.
func classify(err error) error {
	msg := err.Error()
	has := func(code int32) bool { return strings.Contains(msg, errorcode.Lookup(code)) }
	switch {
	case has(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN):
		return auth.ErrUnknownUser
	case has(errorcode.KDC_ERR_PREAUTH_FAILED), has(errorcode.KRB_AP_ERR_BAD_INTEGRITY),
		strings.Contains(msg, "client password/keytab incorrect"):
		return state.ErrBadPassword
	case has(errorcode.KDC_ERR_CLIENT_REVOKED), has(errorcode.KDC_ERR_KEY_EXPIRED), has(errorcode.KDC_ERR_NAME_EXP):
		return fmt.Errorf("%w: %s", auth.ErrLocked, firstLine(msg))
	}
	return fmt.Errorf("kerberos: %s", firstLine(msg))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Status implements auth.Source without a password: an AS request with
// no pre-authentication, which the KDC answers with PREAUTH_REQUIRED (or
// a reply only the user's key opens) for an existing principal, and
// C_PRINCIPAL_UNKNOWN otherwise. No failed login is recorded at the KDC.
func (s *Source) Status(ctx context.Context, user string) (bool, bool, string, error) {
	if !validUser(user) {
		return false, false, "", nil
	}
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, user)
	req, err := messages.NewASReqForTGT(s.Realm, s.Config, cname)
	if err != nil {
		return false, false, "", err
	}
	b, err := req.Marshal()
	if err != nil {
		return false, false, "", err
	}
	rb, err := s.exchange(ctx, b)
	if err != nil {
		return false, false, "", err
	}
	var krbErr messages.KRBError
	if krbErr.Unmarshal(rb) == nil {
		switch krbErr.ErrorCode {
		case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
			return false, false, "", nil
		case errorcode.KDC_ERR_PREAUTH_REQUIRED:
			return true, true, "", nil
		case errorcode.KDC_ERR_CLIENT_REVOKED, errorcode.KDC_ERR_KEY_EXPIRED, errorcode.KDC_ERR_NAME_EXP:
			return true, false, "Kerberos principal " + user + "@" + s.Realm + ": " + errorcode.Lookup(krbErr.ErrorCode), nil
		}
		return false, false, "", fmt.Errorf("kerberos: KDC answered %s", errorcode.Lookup(krbErr.ErrorCode))
	}
	var rep messages.ASRep
	if rep.Unmarshal(rb) == nil {
		return true, true, "", nil
	}
	return false, false, "", errors.New("kerberos: KDC answer is neither KRB-ERROR nor AS-REP")
}

// exchange sends one request to the realm's KDCs over TCP (RFC 4120
// §7.2.2: a four-byte length before each message).
func (s *Source) exchange(ctx context.Context, b []byte) ([]byte, error) {
	_, kdcs, err := s.Config.GetKDCs(s.Realm, true)
	if err != nil {
		return nil, fmt.Errorf("kerberos: no KDC for %s: %w", s.Realm, err)
	}
	var last error
	for i := 1; i <= len(kdcs); i++ {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", kdcs[i])
		if err != nil {
			last = err
			continue
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		msg := make([]byte, 4+len(b))
		binary.BigEndian.PutUint32(msg, uint32(len(b)))
		copy(msg[4:], b)
		_, err = conn.Write(msg)
		var hdr [4]byte
		if err == nil {
			_, err = io.ReadFull(conn, hdr[:])
		}
		if err != nil {
			conn.Close()
			last = err
			continue
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 1<<20 {
			conn.Close()
			return nil, errors.New("kerberos: KDC answer too long")
		}
		rb := make([]byte, n)
		_, err = io.ReadFull(conn, rb)
		conn.Close()
		if err != nil {
			last = err
			continue
		}
		return rb, nil
	}
	return nil, fmt.Errorf("kerberos: no KDC of %s answered: %v", s.Realm, last)
}
