package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/server/outbound"
	"mailmig/state"
)

// newOutbound builds the persistent outgoing queue from [submission]. It
// only spools: the runner that relays to the smarthost is started by
// `mailmig serve` (startOutbound), so a short-lived `mailmig deliver`
// leaves what it queued for the server to send.
func newOutbound(e *env) (delivery.Sender, error) {
	sc := e.cfg.Submission
	if sc.Spool == "" {
		return nil, errors.New("[submission] spool is empty")
	}
	q := &outbound.Queue{
		Dir:      sc.Spool,
		Hostname: e.cfg.Server.Hostname,
		Relay:    smarthostFrom(sc),
		Local:    localRecipients{e},
		Window:   sc.RetryWindow.D(),
		// Mail spooled by `mailmig deliver` (another process) is seen
		// within this; mail queued inside serve kicks the runner at once.
		Poll: 5 * time.Second,
		Log:  e.log.With("component", "outbound"),
	}
	for _, d := range sc.RetryIntervals {
		q.Retry = append(q.Retry, d.D())
	}
	return q, nil
}

func smarthostFrom(sc config.Submission) outbound.Smarthost {
	r := outbound.Smarthost{
		Addr:     sc.Smarthost,
		TLS:      "none",
		Username: sc.SmarthostUser,
		Password: sc.SmarthostPassword,
	}
	if sc.SmarthostSTARTTLS {
		r.TLS = "starttls"
	}
	return r
}

// startOutbound runs the queue until ctx ends; stop waits for the
// attempt in progress to finish.
func startOutbound(ctx context.Context, e *env) (stop func(context.Context) error) {
	q, ok := e.outbound.(*outbound.Queue)
	if !ok || q == nil {
		return func(context.Context) error { return nil }
	}
	if e.cfg.Submission.Smarthost == "" {
		e.log.Warn("no [submission] smarthost: mail for other domains stays queued and bounces after the retry window", "spool", q.Dir)
	}
	// SIGHUP: a changed smarthost, user or password applies at the next
	// attempt (the spool directory and schedule only on restart).
	e.onReload(func(cfg *config.Config) {
		if r := smarthostFrom(cfg.Submission); r != smarthostFrom(e.cfg.Submission) {
			e.log.Info("outgoing queue: smarthost settings reloaded", "smarthost", r.Addr)
		}
		q.SetRelay(smarthostFrom(cfg.Submission))
	})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := q.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
			e.log.Error("outgoing queue stopped", "err", err)
		}
	}()
	return func(sctx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-sctx.Done():
			return fmt.Errorf("outgoing queue: %w", sctx.Err())
		}
	}
}

// localRecipients lets the queue deliver to this server's own users
// (bounces to local senders, redirects to local addresses) through the
// one local delivery path.
type localRecipients struct{ e *env }

func (l localRecipients) IsLocal(_ context.Context, addr string) bool {
	_, _, ok := l.e.localAddress(addr)
	return ok
}

func (l localRecipients) DeliverLocal(ctx context.Context, from, to string, msg msgspool.Source) error {
	user, detail, _ := l.e.localAddress(to)
	if l.e.deliverer == nil {
		return errors.New("no local delivery configured")
	}
	// msg is read from the queue file, never held whole.
	_, err := l.e.deliverer.Deliver(ctx, delivery.Envelope{From: from, To: to, User: user, Detail: detail}, msg)
	if err == nil || delivery.IsTemporary(err) {
		return err
	}
	code, enh, text := delivery.SMTPStatus(err)
	return &outbound.Error{Code: code, Enhanced: fmt.Sprintf("%d.%d.%d", enh[0], enh[1], enh[2]), Text: text}
}

// localAddress splits an address of a local domain into user and
// subaddress (RFC 5233); ok is false for other domains.
func (e *env) localAddress(addr string) (user, detail string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 {
		return "", "", false
	}
	domain := addr[i+1:]
	for _, d := range e.cfg.Server.Domains {
		if strings.EqualFold(d, domain) {
			user, detail, _ = strings.Cut(addr[:i], "+")
			return strings.ToLower(user), detail, true
		}
	}
	return "", "", false
}

// accountExists reports whether user has a server account.
func (e *env) accountExists(ctx context.Context, user string) (bool, error) {
	_, err := e.db.Account(ctx, user)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, state.ErrNoAccount):
		return false, nil
	}
	return false, err
}
