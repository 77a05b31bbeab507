package imap

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/emersion/go-imap/v2"

	"mailmig/server/auth"
)

// resultAuth is the part of *auth.Authenticator that applies the rate
// limits to an authentication the server did itself (GSSAPI).
type resultAuth interface {
	Result(ctx context.Context, remote, user, mech string, err error) error
}

// gssapiAllowed: AUTH=GSSAPI is offered where PLAIN is, or everywhere
// when the configuration says so.
func (c *conn) gssapiAllowed() bool {
	return c.srv.opts.GSSAPI != nil && (c.loginAllowed() || c.srv.opts.GSSAPIWithoutTLS)
}

// cmdAuthenticateGSSAPI: RFC 9051 §6.2.2 AUTHENTICATE with the SASL
// GSSAPI mechanism (RFC 4752), challenges as "+ base64" continuation
// requests, "*" cancels (RFC 9051 §6.2.2).
func (c *conn) cmdAuthenticateGSSAPI(tag string, initial []byte, hasInitial bool) error {
	if !c.gssapiAllowed() {
		if c.srv.opts.GSSAPI == nil {
			return errNo("", "unsupported mechanism GSSAPI")
		}
		return errNo(imap.ResponseCodePrivacyRequired, "AUTHENTICATE only after STARTTLS")
	}
	ra, ok := c.srv.opts.Auth.(resultAuth)
	if !ok {
		return errNo("", "unsupported mechanism GSSAPI")
	}
	srv := c.srv.opts.GSSAPI.NewServer("imap", nil)
	resp := initial
	if !hasInitial {
		resp = nil
	}
	var exchangeErr error
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			exchangeErr = err
			break
		}
		if done {
			break
		}
		c.w.raw("+ " + base64.StdEncoding.EncodeToString(challenge)).crlf()
		if err := c.w.flush(); err != nil {
			return &ioError{err}
		}
		line, err := readLine(c.br, nil)
		if err != nil {
			return &ioError{err}
		}
		if string(line) == "*" {
			return errBad("authentication cancelled")
		}
		if resp, err = base64.StdEncoding.DecodeString(string(line)); err != nil {
			return errBad("invalid base64 response")
		}
	}
	ctx, cancel := c.ctx()
	defer cancel()
	err := ra.Result(ctx, c.remoteIP, srv.User(), "GSSAPI", exchangeErr)
	c.srv.authDone()
	if err != nil {
		c.log.Info("imap: GSSAPI authentication failed", "user", srv.User())
		if errors.Is(err, auth.ErrRateLimited) {
			return errNo(imap.ResponseCodeUnavailable, "too many failed attempts from your address, try again later")
		}
		return errNo(imap.ResponseCodeAuthenticationFailed, "authentication failed")
	}
	return c.loggedIn(tag, srv.User())
}
