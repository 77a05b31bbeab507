package submission

import (
	"context"
	"errors"
	"time"

	"github.com/emersion/go-smtp"

	"mailmig/server/auth"
)

// resultAuth applies the rate limits to a login the server checked
// itself (*auth.Authenticator's Result).
type resultAuth interface {
	Result(ctx context.Context, remote, user, mech string, err error) error
}

// gssapiServer is AUTH GSSAPI (RFC 4954 with RFC 4752): go-smtp carries
// the 334 challenges; the result goes through the rate limits.
type gssapiServer struct {
	ss   *session
	next func([]byte) ([]byte, bool, error)
	user func() string
}

func (ss *session) gssapiServer() *gssapiServer {
	srv := ss.s.GSSAPI.NewServer("smtp", nil)
	return &gssapiServer{ss: ss, next: srv.Next, user: srv.User}
}

// Next implements sasl.Server.
func (g *gssapiServer) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := g.next(response)
	if err == nil && !done {
		return challenge, false, nil
	}
	ss := g.ss
	ra, ok := ss.s.Auth.(resultAuth)
	if !ok {
		return nil, false, smtp.ErrAuthFailed
	}
	ctx, cancel := context.WithTimeout(ss.s.ctx, time.Minute)
	defer cancel()
	if rerr := ra.Result(ctx, ss.remote.String(), g.user(), "GSSAPI", err); rerr != nil {
		ss.s.log().Info("submission: GSSAPI authentication failed", "remote", ss.remote, "user", g.user(), "err", err)
		if errors.Is(rerr, auth.ErrRateLimited) {
			return nil, false, smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "too many failed attempts, try again later")
		}
		return nil, false, smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "authentication failed")
	}
	ss.loggedIn(g.user())
	return nil, true, nil
}
