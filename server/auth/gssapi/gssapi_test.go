package gssapi

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	krbgss "github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"mailmig/server/auth/kerberos/kdctest"
)

// initialToken logs user in at the KDC of krb5conf with gokrb5 and
// returns the GSS-API initial context token for imap/localhost (mutual
// authentication requested) and the key the context will use.
func initialToken(t *testing.T, krb5conf, realm, user, password string) ([]byte, types.EncryptionKey) {
	t.Helper()
	cfg, err := krbconfig.Load(krb5conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword(user, realm, password, cfg, client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	tkt, key, err := cl.GetServiceTicket("imap/localhost")
	if err != nil {
		t.Fatalf("service ticket: %v", err)
	}
	tok, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{krbgss.ContextFlagMutual, krbgss.ContextFlagInteg}, []int{flags.APOptionMutualRequired})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if sk := tok.APReq.Authenticator.SubKey; sk.KeyType != 0 {
		key = sk
	}
	return b, key
}

// TestAcceptorAgainstMITKDC: tickets from a real MIT KDC; the whole RFC
// 4752 exchange for a good ticket; refused: a ticket from a spoofed KDC
// of the same realm, a ticket of another realm (whose service key the
// keytab has too), an expired ticket, an authorization identity of
// another user, a second use of the same token (replay).
func TestAcceptorAgainstMITKDC(t *testing.T) {
	kdc := kdctest.Start(t, "TEST.MAILMIG")
	kdc.AddUser("alice", "alice-pw")
	kdc.AddUser("shortlived", "short-pw")
	kdc.Kadmin(`modprinc -maxlife "3 seconds" shortlived`)
	kt := kdc.AddServices(filepath.Join(kdc.Dir, "mail.keytab"), "imap/localhost")
	other := kdctest.Start(t, "OTHER.REALM")
	other.AddUser("bob", "bob-pw")
	other.AddServices(kt, "imap/localhost") // the keytab serves both realms
	spoof := kdctest.Start(t, "TEST.MAILMIG")
	spoof.AddUser("alice", "attacker-pw")
	spoof.AddServices(filepath.Join(spoof.Dir, "spoof.keytab"), "imap/localhost")

	ktab, err := keytab.Load(kt)
	if err != nil {
		t.Fatal(err)
	}
	acc := &Acceptor{Keytab: ktab, Hostname: "localhost", Realms: []string{"TEST.MAILMIG"}, MaxClockSkew: time.Second}

	// The whole exchange, as the client does it.
	tok, key := initialToken(t, kdc.Krb5Conf, "TEST.MAILMIG", "alice", "alice-pw")
	for _, authz := range []string{"", "alice", "bob"} {
		if authz != "" {
			tok, key = initialToken(t, kdc.Krb5Conf, "TEST.MAILMIG", "alice", "alice-pw")
		}
		srv := acc.NewServer("imap", nil)
		c, done, err := srv.Next(nil)
		if err != nil || done || len(c) != 0 {
			t.Fatalf("first step: %q %v %v", c, done, err)
		}
		aprep, done, err := srv.Next(tok)
		if err != nil || done || !bytes.HasPrefix(aprep, []byte{0x60}) {
			t.Fatalf("AP-REQ: %x %v %v", aprep, done, err)
		}
		offer, done, err := srv.Next([]byte{})
		if err != nil || done {
			t.Fatalf("offer: %v %v", done, err)
		}
		var wt krbgss.WrapToken
		if err := wt.Unmarshal(offer, true); err != nil {
			t.Fatal(err)
		}
		if ok, err := wt.Verify(key, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok || !bytes.Equal(wt.Payload, []byte{1, 0, 0, 0}) {
			t.Fatalf("offer %x does not verify: %v", wt.Payload, err)
		}
		answer, err := krbgss.NewInitiatorWrapToken(append([]byte{1, 0, 0, 0}, authz...), key)
		if err != nil {
			t.Fatal(err)
		}
		ab, _ := answer.Marshal()
		_, done, err = srv.Next(ab)
		if authz == "bob" {
			if err == nil || !strings.Contains(err.Error(), `may not act as "bob"`) {
				t.Errorf("alice acting as bob: %v %v", done, err)
			}
			continue
		}
		if err != nil || !done || srv.User() != "alice" {
			t.Fatalf("authz %q: done %v user %q err %v", authz, done, srv.User(), err)
		}
	}

	refuse := func(name string, tok []byte, want string, a *Acceptor) {
		t.Helper()
		srv := a.NewServer("imap", nil)
		_, _, err := srv.Next(tok)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", name, err, want)
		}
	}
	refuse("replayed token", tok, "replay", acc)
	spoofed, _ := initialToken(t, spoof.Krb5Conf, "TEST.MAILMIG", "alice", "attacker-pw")
	refuse("spoofed KDC", spoofed, "AP-REQ refused", acc)
	otherTok, _ := initialToken(t, other.Krb5Conf, "OTHER.REALM", "bob", "bob-pw")
	refuse("other realm", otherTok, "realm OTHER.REALM not accepted", acc)
	// Mapped explicitly, the other realm's bob may log in as bob.
	mapped := *acc
	mapped.Principals = map[string]string{"bob@OTHER.REALM": "bob"}
	otherTok, _ = initialToken(t, other.Krb5Conf, "OTHER.REALM", "bob", "bob-pw")
	if _, _, err := mapped.NewServer("imap", nil).Next(otherTok); err != nil {
		t.Errorf("mapped other-realm principal: %v", err)
	}
	wrongService := acc.NewServer("smtp", nil)
	tok2, _ := initialToken(t, kdc.Krb5Conf, "TEST.MAILMIG", "alice", "alice-pw")
	if _, _, err := wrongService.Next(tok2); err == nil || !strings.Contains(err.Error(), "not smtp/localhost") {
		t.Errorf("imap ticket on smtp: %v", err)
	}
	short, _ := initialToken(t, kdc.Krb5Conf, "TEST.MAILMIG", "shortlived", "short-pw")
	time.Sleep(4500 * time.Millisecond)
	refuse("expired ticket", short, "AP-REQ refused", acc)
}

// FuzzToken feeds arbitrary bytes to every step of the exchange: the
// initial token parser (framing, AP-REQ) and the wrap-token parser of
// the last step. Nothing may panic or succeed.
func FuzzToken(f *testing.F) {
	f.Add([]byte{0x60, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01, 0x00})
	f.Add([]byte{0x60, 0x82, 0x00, 0x02, 0x06, 0x00})
	f.Add([]byte{0x05, 0x04, 0x00, 0xff, 0x00, 0x0c, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	acc := &Acceptor{Keytab: keytab.New(), Hostname: "localhost", Realms: []string{"TEST.MAILMIG"}}
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{7}, 32)}
	f.Fuzz(func(t *testing.T, b []byte) {
		srv := acc.NewServer("imap", nil)
		if _, done, err := srv.Next(b); done || (err == nil && len(b) > 0) {
			t.Fatalf("initial token %x accepted", b)
		}
		last := acc.NewServer("imap", nil)
		last.step, last.key, last.user = 2, key, "alice"
		if _, done, err := last.Next(b); done || err == nil {
			t.Fatalf("wrap token %x accepted", b)
		}
		unframe(b)
	})
}
