package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// macHexLen is the token's MAC length in hex digits (128 bits).
const macHexLen = 32

// ErrBadToken is returned for a control-address detail that is not a
// well-formed token.
var ErrBadToken = errors.New("notify: malformed reply token")

func mac(secret []byte, user, migrationID string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("mailmig-stop\x00"))
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(migrationID))
	return hex.EncodeToString(h.Sum(nil))[:macHexLen]
}

// Token returns the reply token for user's migration: the MAC, a '-' and
// the user name, so the control address itself says whose it claims to be
// (mailmig-confirm+TOKEN@domain). Only the holder of secret can make one.
func Token(secret []byte, user, migrationID string) string {
	return mac(secret, user, migrationID) + "-" + user
}

// ParseToken splits a token into its MAC and the user it claims.
func ParseToken(tok string) (macHex, user string, err error) {
	if len(tok) < macHexLen+2 || tok[macHexLen] != '-' {
		return "", "", ErrBadToken
	}
	return strings.ToLower(tok[:macHexLen]), tok[macHexLen+1:], nil
}

// VerifyToken reports whether tok was made by Token for user and
// migrationID with secret, comparing in constant time.
func VerifyToken(secret []byte, tok, user, migrationID string) bool {
	m, u, err := ParseToken(tok)
	if err != nil || u != user || migrationID == "" {
		return false
	}
	return hmac.Equal([]byte(m), []byte(mac(secret, user, migrationID)))
}

// ReplyAddress returns the control address carrying user's token.
func ReplyAddress(localPart, domain string, secret []byte, user, migrationID string) string {
	return localPart + "+" + Token(secret, user, migrationID) + "@" + domain
}
