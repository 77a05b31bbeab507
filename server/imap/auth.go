package imap

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mailmig/server/auth"
	"mailmig/server/listen"
	"mailmig/server/sessions"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
)

// errUserIPLimit ends a session over Limits.UserIP.
var errUserIPLimit = errors.New("too many sessions of the user from this address")

// RFC 9051 §6.2.3
func (c *conn) cmdLogin(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	user, err := p.astring()
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	pass, err := p.astring()
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if !c.loginAllowed() {
		return errNo(imap.ResponseCodePrivacyRequired, "LOGIN only after STARTTLS")
	}
	return c.login(tag, user, pass)
}

// login checks credentials and opens the user's store.
func (c *conn) login(tag, user, pass string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	// The Authenticator bounds and shares the password checks itself and
	// serves the failure delay outside its slots.
	err := c.srv.opts.Auth.Authenticate(ctx, c.remoteIP, user, pass)
	c.srv.authDone()
	if err != nil {
		// The authenticator logs the reason; never log the password.
		c.log.Info("imap: authentication failed", "user", user)
		if errors.Is(err, auth.ErrRateLimited) {
			// Not AUTHENTICATIONFAILED: the password was not even
			// checked, and clients ask the user for a new one on that.
			return errNo(imap.ResponseCodeUnavailable, "too many failed attempts from your address, try again later")
		}
		return errNo(imap.ResponseCodeAuthenticationFailed, "authentication failed")
	}
	return c.loggedIn(tag, user)
}

// loggedIn opens the session of an authenticated user and answers tag.
func (c *conn) loggedIn(tag, user string) error {
	if ul := c.srv.opts.Limits.UserIP; ul != nil {
		release, ok := ul.Acquire(listen.UserIPKey(user, c.nc.RemoteAddr()))
		if !ok {
			// As dovecot: NO [LIMIT] naming the setting, then the
			// connection ends.
			c.log.Warn("imap: too many sessions of user from address", "user", user, "limit", ul.Max)
			c.w.status(tag, imap.StatusResponseTypeNo, imap.ResponseCodeLimit,
				fmt.Sprintf("Maximum number of connections from user+IP exceeded (mail_max_userip_connections=%d)", ul.Max))
			c.w.flush()
			return &ioError{errUserIPLimit}
		}
		c.releaseUser = release
	}
	st, err := c.srv.stores.acquire(user, true)
	if err != nil {
		c.log.Error("imap: open store", "user", user, "err", err)
		if c.releaseUser != nil {
			c.releaseUser()
			c.releaseUser = nil
		}
		return errNo(imap.ResponseCodeUnavailable, "mailbox store unavailable")
	}
	c.user, c.store, c.state = user, st, stateAuth
	sessions.LoggedIn(c.nc, user) // mailmig who / kick
	c.log = c.log.With("user", user)
	c.log.Info("imap: login")
	c.w.status(tag, imap.StatusResponseTypeOK, imap.ResponseCode("CAPABILITY "+c.capabilities()), "logged in")
	return nil
}

// RFC 9051 §6.2.2, SASL PLAIN (RFC 4616) with SASL-IR (RFC 4959).
func (c *conn) cmdAuthenticate(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	mech, err := p.atom()
	if err != nil {
		return err
	}
	var initial []byte
	hasInitial := false
	if p.take(' ') {
		s, err := p.atom()
		if err != nil {
			return err
		}
		hasInitial = true
		if s != "=" {
			if initial, err = base64.StdEncoding.DecodeString(s); err != nil {
				return errBad("invalid base64 in initial response")
			}
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	if strings.EqualFold(mech, "GSSAPI") {
		return c.cmdAuthenticateGSSAPI(tag, initial, hasInitial)
	}
	if !strings.EqualFold(mech, "PLAIN") {
		return errNo("", "unsupported mechanism %s", mech)
	}
	if !c.loginAllowed() {
		return errNo(imap.ResponseCodePrivacyRequired, "AUTHENTICATE only after STARTTLS")
	}
	var user, pass string
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errNo(imap.ResponseCodeAuthorizationFailed, "cannot act as another user")
		}
		user, pass = username, password
		return nil
	})
	resp := initial
	if !hasInitial {
		c.w.raw("+ ").crlf()
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
	if _, _, err := srv.Next(resp); err != nil {
		if re, ok := err.(*respErr); ok {
			return re
		}
		return errNo(imap.ResponseCodeAuthenticationFailed, "authentication failed")
	}
	return c.login(tag, user, pass)
}

// RFC 5161 ENABLE; IMAP4rev2 (RFC 9051 §6.3.1) is accepted so rev2
// clients get ESEARCH answers and no \Recent.
func (c *conn) cmdEnable(tag string, p *parser, _ bool) error {
	// Every extension the command names that the server knows is listed
	// in ENABLED, once, even when already on (as dovecot answers; RFC
	// 5161 §3.1 lets a client ENABLE twice); unknown ones are ignored,
	// and no ENABLED is sent when nothing is known.
	var enabled []string
	add := func(name string) {
		if !slices.Contains(enabled, name) {
			enabled = append(enabled, name)
		}
	}
	for p.take(' ') {
		a, err := p.atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "IMAP4REV2":
			c.rev2 = true
			c.w.utf8 = true
			add("IMAP4rev2")
		case "QRESYNC":
			// RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
			c.qresync, c.condstore = true, true
			add("QRESYNC")
		case "CONDSTORE":
			if !c.condstoreEnabled {
				c.condstoreEnabled = true
				c.enableCondstore()
			}
			add("CONDSTORE")
		case "UTF8=ACCEPT":
			c.utf8Accept, c.w.utf8 = true, true
			add("UTF8=ACCEPT")
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	if len(enabled) > 0 {
		c.w.raw("* ENABLED")
		for _, e := range enabled {
			c.w.sp().raw(e)
		}
		c.w.crlf()
	}
	return c.ok(tag, "", "ENABLE completed", true)
}
