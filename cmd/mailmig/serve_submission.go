package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emersion/go-smtp"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/server/submission"
)

// startSubmission starts the outgoing queue's runner (always: Sieve
// redirects and vacation replies need it too) and one submission server
// per [submission] listener.
func startSubmission(ctx context.Context, e *env) (func(context.Context) error, error) {
	stopQueue := startOutbound(ctx, e)
	nets, err := parseNetworks(e.cfg.Submission.TrustedNetworks)
	if err != nil {
		stopQueue(ctx)
		return nil, err
	}
	var servers []*submission.Server
	stop := func(sctx context.Context) error {
		var errs []error
		for _, s := range servers {
			errs = append(errs, s.Shutdown(sctx))
		}
		errs = append(errs, stopQueue(sctx))
		return errors.Join(errs...)
	}
	for _, l := range e.cfg.Submission.Listeners {
		ln, err := e.listenAs("submission", l)
		if err != nil {
			stop(ctx)
			return nil, fmt.Errorf("submission listener %s: %w", l.Address, err)
		}
		s := &submission.Server{
			GSSAPI:            e.gssapi,
			GSSAPIWithoutTLS:  e.cfg.Auth.Kerberos.GSSAPIWithoutTLS,
			Hostname:          e.cfg.Server.Hostname,
			TLSConfig:         e.tls,
			ImplicitTLS:       l.TLS == config.TLSImplicit,
			AllowInsecureAuth: l.Trusted,
			MaxMessageBytes:   int64(e.cfg.Limits.MessageSize),
			TrustedNetworks:   nets,
			Domains:           e.cfg.Server.Domains,
			Auth:              e.authFor("submission"),
			UserExists:        e.userExists,
			SenderAlias:       e.aliases.SoleUser,
			Local:             submissionDelivery{e},
			SpoolThreshold:    int64(e.cfg.Connections.SpoolThreshold),
			WriteTimeout:      e.cfg.Connections.WriteTimeout.D(),
			PreAuthTimeout:    e.cfg.Connections.PreAuthTimeout.D(),
			CommandTimeout:    e.cfg.Connections.CommandTimeout.D(),
			UserIP:            e.protoLimits("submission").userIP,
			Log:               e.log.With("component", "submission", "listener", ln.Addr().String()),
		}
		if e.outbound != nil {
			s.Outbound = e.outbound
		}
		if l.TLS == config.TLSNone {
			// A listener without TLS offers no STARTTLS either.
			s.TLSConfig = nil
		}
		servers = append(servers, s)
		name := "submission"
		if l.TLS == config.TLSImplicit {
			name = "submissions"
		}
		e.addListener(name, ln)
		ln = e.limitListener("submission", ln, l.TLS == config.TLSImplicit, "421 4.7.0 "+e.cfg.Server.Hostname+" Too many connections, try again later\r\n")
		go func() {
			if err := s.Serve(ln); err != nil {
				e.log.Error("submission listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return stop, nil
}

func parseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, n := range list {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return nil, fmt.Errorf("[submission] trusted_networks: %q: %w", n, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// userExists asks the local delivery path whether a local user exists,
// falling back to the server accounts.
func (e *env) userExists(ctx context.Context, user string) (bool, error) {
	if cp := e.cfg.Migration.ControlLocalPart; cp != "" && strings.EqualFold(user, cp) {
		return true, nil // replies to the confirmation: the Deliverer's Intercept takes them
	}
	if e.deliverer != nil && e.deliverer.UserExists != nil {
		return e.recipientExists(ctx, user)
	}
	return e.accountExists(ctx, user)
}

// submissionDelivery delivers submitted mail to local recipients through
// the Deliverer and turns its errors into the replies delivery chose.
type submissionDelivery struct{ e *env }

func (d submissionDelivery) Deliver(ctx context.Context, env submission.Envelope, msg msgspool.Source) error {
	if d.e.deliverer == nil {
		return errors.New("no local delivery configured")
	}
	res, err := d.e.deliverer.Deliver(ctx, delivery.Envelope{From: env.From, To: env.To, User: env.User, Detail: env.Detail}, msg)
	countDelivery("submission", res, err)
	if err == nil {
		return nil
	}
	code, enh, text := delivery.SMTPStatus(err)
	if !strings.HasPrefix(text, d.e.cfg.Server.Hostname) && code/100 == 5 && enh == [3]int{5, 3, 4} {
		text = d.e.cfg.Server.Hostname + ": " + text
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enh), Message: text}
}

var _ submission.Deliverer = submissionDelivery{}
