package managesieve

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"mailmig/server/auth"
)

// resultAuth applies the rate limits to a login the server checked
// itself (*auth.Authenticator's Result).
type resultAuth interface {
	Result(ctx context.Context, remote, user, mech string, err error) error
}

func (c *conn) gssapiAllowed() bool {
	return c.s.GSSAPI != nil && (c.authAllowed() || c.s.GSSAPIWithoutTLS)
}

// authenticateGSSAPI: RFC 5804 §2.1 AUTHENTICATE "GSSAPI" (RFC 4752):
// each challenge is a string of base64, each client response a string,
// "*" cancels.
func (c *conn) authenticateGSSAPI(cmd *Command) bool {
	ra, ok := c.s.Auth.(resultAuth)
	if !ok {
		c.reply("NO", "", "unsupported mechanism")
		return false
	}
	srv := c.s.GSSAPI.NewServer("sieve", nil)
	var resp []byte
	if len(cmd.Args) == 2 {
		var err error
		if resp, err = base64.StdEncoding.DecodeString(cmd.Args[1]); err != nil {
			c.reply("NO", "", "invalid base64 in authentication response")
			return false
		}
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
		// A literal, as Cyrus timsieved sends challenges: Cyrus'
		// sivtest reads no quoted challenge (RFC 5804 allows both).
		b64 := base64.StdEncoding.EncodeToString(challenge)
		fmt.Fprintf(c.w, "{%d}\r\n%s\r\n", len(b64), b64)
		if c.flush() != nil {
			return true
		}
		s, ended, quit := c.readSASLResponse()
		if ended {
			return quit
		}
		if resp, err = base64.StdEncoding.DecodeString(s); err != nil {
			c.reply("NO", "", "invalid base64 in authentication response")
			return false
		}
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, time.Minute)
	err := ra.Result(ctx, c.remote, srv.User(), "GSSAPI", exchangeErr)
	cancel()
	if err != nil {
		c.s.log().Info("managesieve: GSSAPI authentication failed", "remote", c.remote, "user", srv.User(), "err", err)
		if errors.Is(err, auth.ErrRateLimited) {
			c.reply("NO", "TRYLATER", "too many failed attempts, try again later")
			return false
		}
		c.reply("NO", "", "authentication failed")
		return false
	}
	return c.authenticated(srv.User())
}
