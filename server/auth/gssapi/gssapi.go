// Package gssapi is the server side of the SASL GSSAPI mechanism (RFC
// 4752) with the Kerberos V5 GSS-API mechanism (RFC 4121), for IMAP
// AUTHENTICATE, submission AUTH and ManageSieve AUTHENTICATE.
//
// The client's initial context token (RFC 2743 §3.1 framing around an
// AP-REQ) is verified against the service keytab with
// github.com/jcmturner/gokrb5/v8 (ticket decryption, validity, clock skew,
// replay cache, authenticator). What gokrb5 lacks for an acceptor is
// written here: the AP-REP for mutual authentication (RFC 4120 §5.5.2,
// key usage 12), the context token framing, and the RFC 4752 §3.1
// security-layer exchange with RFC 4121 Wrap tokens (acceptor flag,
// ACCEPTOR_SEAL / INITIATOR_SEAL key usages, RRC rotation). Only the "no
// security layer" option is offered: the session runs inside TLS.
//
// The authenticated principal maps to an account through Map: the realm
// must be one of Realms and the principal one plain component, unless
// Principals names it.
package gssapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	krbgss "github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/types"
)

// krb5OID is the Kerberos V5 GSS-API mechanism, 1.2.840.113554.1.2.2,
// DER-encoded with its tag.
var krb5OID = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}

// Token IDs of RFC 4121 §4.1.
var (
	tokAPReq = []byte{0x01, 0x00}
	tokAPRep = []byte{0x02, 0x00}
)

// MaxToken bounds a client token (a ticket with a large PAC is a few KB).
const MaxToken = 64 << 10

// Acceptor holds what every GSSAPI login of a server shares.
type Acceptor struct {
	Keytab *keytab.Keytab
	// Hostname is the host part of the service principals
	// (imap/Hostname, smtp/Hostname, sieve/Hostname).
	Hostname string
	// Realms are the client realms accepted (the site's realm).
	Realms []string
	// Principals maps whole principal names ("alice/admin@REALM") to
	// accounts; it is consulted before the realm rule.
	Principals map[string]string
	// MaxClockSkew is the allowed clock difference (5 minutes if 0).
	MaxClockSkew time.Duration
}

// Map turns an authenticated principal into an account name, or says
// why it cannot log in.
func (a *Acceptor) Map(name []string, realm string) (string, error) {
	full := strings.Join(name, "/") + "@" + realm
	if u, ok := a.Principals[full]; ok {
		return u, nil
	}
	known := false
	for _, r := range a.Realms {
		if r == realm {
			known = true
		}
	}
	if !known {
		return "", fmt.Errorf("gssapi: principal %s: realm %s not accepted", full, realm)
	}
	if len(name) != 1 || name[0] == "" {
		return "", fmt.Errorf("gssapi: principal %s is not a user principal", full)
	}
	return name[0], nil
}

// Server is one SASL GSSAPI exchange; it implements the Next method of
// github.com/emersion/go-sasl's Server.
type Server struct {
	a       *Acceptor
	service string // "imap", "smtp", "sieve"
	// Authorize is called with the account once the exchange succeeded
	// and the client's authorization identity (empty or the same).
	authorize func(user string) error

	step    int
	key     types.EncryptionKey
	user    string
	mutual  bool
	sendSeq uint64
}

// NewServer starts an exchange for the service principal
// service/Hostname. authorize is called with the mapped account at the
// end; its error fails the exchange.
func (a *Acceptor) NewServer(service string, authorize func(user string) error) *Server {
	return &Server{a: a, service: service, authorize: authorize}
}

// User is the account, once the exchange has succeeded.
func (s *Server) User() string { return s.user }

// Next implements sasl.Server: the challenge to send, whether the
// exchange is done, or an error (the client is told only "failed").
func (s *Server) Next(response []byte) (challenge []byte, done bool, err error) {
	if len(response) > MaxToken {
		return nil, false, errors.New("gssapi: token too long")
	}
	switch s.step {
	case 0:
		if len(response) == 0 {
			// No initial response: ask for the token (RFC 4422 §5).
			s.step = -1
			return []byte{}, false, nil
		}
		return s.accept(response)
	case -1:
		return s.accept(response)
	case 1:
		// After our AP-REP the client's context is complete and it
		// sends an empty response; now the security layer offer.
		if len(response) != 0 {
			return nil, false, errors.New("gssapi: expected an empty response after the AP-REP")
		}
		return s.offer()
	case 2:
		return s.finish(response)
	}
	return nil, false, errors.New("gssapi: exchange already finished")
}

// accept verifies the initial context token and answers with an AP-REP
// (mutual authentication) or, without one, the security-layer offer.
func (s *Server) accept(tok []byte) ([]byte, bool, error) {
	inner, err := unframe(tok)
	if err != nil {
		return nil, false, err
	}
	if !bytes.HasPrefix(inner, tokAPReq) {
		return nil, false, errors.New("gssapi: initial token is not an AP-REQ")
	}
	var req messages.APReq
	if err := req.Unmarshal(inner[2:]); err != nil {
		return nil, false, fmt.Errorf("gssapi: AP-REQ: %v", err)
	}
	want := types.NewPrincipalName(nametype.KRB_NT_SRV_HST, s.service+"/"+s.a.Hostname)
	if !principalNameEqual(req.Ticket.SName, want) {
		return nil, false, fmt.Errorf("gssapi: ticket is for %s, not %s", req.Ticket.SName.PrincipalNameString(), want.PrincipalNameString())
	}
	skew := s.a.MaxClockSkew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	settings := service.NewSettings(s.a.Keytab, service.DecodePAC(false), service.MaxClockSkew(skew))
	ok, _, err := service.VerifyAPREQ(&req, settings)
	if err != nil || !ok {
		return nil, false, fmt.Errorf("gssapi: AP-REQ refused: %v", firstLine(err))
	}
	user, err := s.a.Map(req.Ticket.DecryptedEncPart.CName.NameString, req.Ticket.DecryptedEncPart.CRealm)
	if err != nil {
		return nil, false, err
	}
	s.user = user
	s.key = req.Ticket.DecryptedEncPart.Key
	if req.Authenticator.SubKey.KeyType != 0 && len(req.Authenticator.SubKey.KeyValue) > 0 {
		s.key = req.Authenticator.SubKey
	}
	if types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired) {
		rep, err := apRep(req, req.Ticket.DecryptedEncPart.Key)
		if err != nil {
			return nil, false, err
		}
		s.step = 1
		return frame(append(append([]byte{}, tokAPRep...), rep...)), false, nil
	}
	return s.offer()
}

// offer sends the RFC 4752 §3.1 wrap token: security layers (bit 1: none)
// and the largest buffer (none offered: 0).
func (s *Server) offer() ([]byte, bool, error) {
	tok, err := s.wrap([]byte{0x01, 0, 0, 0})
	if err != nil {
		return nil, false, err
	}
	s.step = 2
	return tok, false, nil
}

// finish checks the client's wrap token: the layer chosen must be "no
// security layer"; an authorization identity must be the user itself.
func (s *Server) finish(tok []byte) ([]byte, bool, error) {
	payload, err := s.unwrap(tok)
	if err != nil {
		return nil, false, err
	}
	if len(payload) < 4 {
		return nil, false, errors.New("gssapi: security layer answer too short")
	}
	if payload[0]&0x01 == 0 || payload[0]&^0x01 != 0 {
		return nil, false, fmt.Errorf("gssapi: client chose security layer %#x; only none (1) is offered", payload[0])
	}
	if authz := string(payload[4:]); authz != "" && authz != s.user {
		return nil, false, fmt.Errorf("gssapi: %s may not act as %q", s.user, authz)
	}
	s.step = 3
	if s.authorize != nil {
		if err := s.authorize(s.user); err != nil {
			return nil, false, err
		}
	}
	return nil, true, nil
}

// wrap makes an acceptor Wrap token without confidentiality (RFC 4121
// §4.2.6.2): header, payload, checksum over payload and header.
func (s *Server) wrap(payload []byte) ([]byte, error) {
	et, err := crypto.GetEtype(s.key.KeyType)
	if err != nil {
		return nil, err
	}
	wt := krbgss.WrapToken{Flags: 0x01, EC: uint16(et.GetHMACBitLength() / 8), SndSeqNum: s.sendSeq, Payload: payload}
	if err := wt.SetCheckSum(s.key, keyusage.GSSAPI_ACCEPTOR_SEAL); err != nil {
		return nil, err
	}
	s.sendSeq++
	return wt.Marshal()
}

// unwrap verifies an initiator Wrap token without confidentiality.
func (s *Server) unwrap(tok []byte) ([]byte, error) {
	if len(tok) < 16 {
		return nil, errors.New("gssapi: wrap token too short")
	}
	if tok[2]&0x02 != 0 {
		return nil, errors.New("gssapi: sealed wrap tokens are not accepted here (no security layer)")
	}
	// Undo the right rotation (RRC) of the data after the header.
	if rrc := int(binary.BigEndian.Uint16(tok[6:8])); rrc != 0 {
		data := tok[16:]
		if len(data) == 0 {
			return nil, errors.New("gssapi: wrap token without data")
		}
		rrc %= len(data)
		rot := append(append([]byte{}, data[rrc:]...), data[:rrc]...)
		tok = append(append([]byte{}, tok[:16]...), rot...)
		binary.BigEndian.PutUint16(tok[6:8], 0)
	}
	var wt krbgss.WrapToken
	if err := wt.Unmarshal(tok, false); err != nil {
		return nil, fmt.Errorf("gssapi: wrap token: %v", err)
	}
	if wt.Flags&0x04 != 0 {
		return nil, errors.New("gssapi: wrap token claims an acceptor subkey we did not send")
	}
	if ok, err := wt.Verify(s.key, keyusage.GSSAPI_INITIATOR_SEAL); !ok {
		return nil, fmt.Errorf("gssapi: wrap token checksum: %v", err)
	}
	return wt.Payload, nil
}

// encAPRepPart is RFC 4120's EncAPRepPart without the optional subkey:
// the initiator's subkey stays the context key.
type encAPRepPart struct {
	CTime          time.Time `asn1:"generalized,explicit,tag:0"`
	Cusec          int       `asn1:"explicit,tag:1"`
	SequenceNumber int64     `asn1:"explicit,tag:3"`
}

type apRepMsg struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	EncPart types.EncryptedData `asn1:"explicit,tag:2"`
}

// apRep builds the KRB_AP_REP of RFC 4120 §3.2.4: the authenticator's
// time, encrypted in the session key (key usage 12).
func apRep(req messages.APReq, sessionKey types.EncryptionKey) ([]byte, error) {
	part := encAPRepPart{CTime: req.Authenticator.CTime, Cusec: req.Authenticator.Cusec, SequenceNumber: 0}
	b, err := asn1.Marshal(part)
	if err != nil {
		return nil, err
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(b, sessionKey, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, err
	}
	rep, err := asn1.Marshal(apRepMsg{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		return nil, err
	}
	return asn1tools.AddASNAppTag(rep, asnAppTag.APREP), nil
}

// unframe removes RFC 2743 §3.1's InitialContextToken framing and checks
// the mechanism is Kerberos V5.
func unframe(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0x60 {
		return nil, errors.New("gssapi: not a GSS-API initial context token")
	}
	n, hdr, err := derLength(b[1:])
	if err != nil {
		return nil, err
	}
	body := b[1+hdr:]
	if n != len(body) {
		return nil, errors.New("gssapi: token length does not match")
	}
	if !bytes.HasPrefix(body, krb5OID) {
		return nil, errors.New("gssapi: mechanism is not Kerberos V5")
	}
	return body[len(krb5OID):], nil
}

// frame wraps an inner token (token ID and message) in the framing.
func frame(inner []byte) []byte {
	body := append(append([]byte{}, krb5OID...), inner...)
	out := []byte{0x60}
	out = append(out, derLen(len(body))...)
	return append(out, body...)
}

func derLen(n int) []byte {
	if n < 0x80 {
		return []byte{byte(n)}
	}
	var b []byte
	for x := n; x > 0; x >>= 8 {
		b = append([]byte{byte(x)}, b...)
	}
	return append([]byte{0x80 | byte(len(b))}, b...)
}

func derLength(b []byte) (n, used int, err error) {
	if len(b) == 0 {
		return 0, 0, errors.New("gssapi: truncated length")
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 3 || len(b) < 1+k {
		return 0, 0, errors.New("gssapi: bad length")
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, nil
}

func principalNameEqual(a, b types.PrincipalName) bool {
	if len(a.NameString) != len(b.NameString) {
		return false
	}
	for i := range a.NameString {
		if a.NameString[i] != b.NameString[i] {
			return false
		}
	}
	return true
}

func firstLine(err error) string {
	if err == nil {
		return "not valid"
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
