package notify

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"strings"

	"mailmig/server/delivery"
	"mailmig/state"
)

// Event kinds Control writes to the state event log.
const (
	EventReplyStop     = "reply-stop"      // a valid reply asked to stop old delivery
	EventReplyRejected = "reply-rejected"  // missing/bad/foreign token: nothing changed
	EventReplyAuto     = "reply-automatic" // an auto-reply (RFC 3834) to the confirmation: ignored
)

// Control handles mail to the control address (LOCALPART+TOKEN@domain):
// a valid token stops the old delivery of exactly the user it was made
// for; anything else changes nothing and is logged. Set Intercept as the
// delivery.Deliverer's Intercept hook.
type Control struct {
	// LocalPart is the control address's local part (config
	// migration.control_local_part).
	LocalPart string
	// Secret is the HMAC key.
	Secret []byte
	// DB holds the queue (migration ids) and takes the stop request.
	DB *state.DB
	// Logger receives one line per handled reply (slog.Default if nil).
	Logger *slog.Logger
}

// IsControl reports whether env is addressed to the control address.
func (c *Control) IsControl(env delivery.Envelope) bool {
	local, _ := splitRecipient(env)
	return c.LocalPart != "" && strings.EqualFold(local, c.LocalPart)
}

func splitRecipient(env delivery.Envelope) (local, detail string) {
	local, detail = env.User, env.Detail
	if to := env.To; to != "" {
		to = strings.Trim(to, "<>")
		if i := strings.LastIndexByte(to, '@'); i >= 0 {
			to = to[:i]
		}
		l, d, _ := strings.Cut(to, "+")
		if local == "" || strings.EqualFold(local, l) {
			local = l
			if detail == "" {
				detail = d
			}
		}
	}
	if l, d, ok := strings.Cut(local, "+"); ok {
		local, detail = l, d
	}
	return local, detail
}

// Intercept is the delivery hook: it handles every message to the control
// address (handled=true, so none is ever stored) and passes on the rest.
func (c *Control) Intercept(ctx context.Context, env delivery.Envelope, msg []byte) (bool, error) {
	if !c.IsControl(env) {
		return false, nil
	}
	_, err := c.Handle(ctx, env, msg)
	return true, err
}

// automatic says why a message is an automatic one (an out-of-office
// answer, a list's or a robot's mail) and must not count as the user's
// reply, or "" for a message a person sent: RFC 3834 (Auto-Submitted, the
// null sender of §3.1.3's responders) and the de-facto headers of
// vacation programs, list servers and Exchange.
func automatic(env delivery.Envelope, hdr textproto.MIMEHeader) string {
	if f := strings.Trim(strings.TrimSpace(env.From), "<>"); f == "" {
		return "null envelope sender"
	}
	if as := strings.ToLower(strings.TrimSpace(hdr.Get("Auto-Submitted"))); as != "" && as != "no" {
		return "Auto-Submitted: " + as
	}
	switch p := strings.ToLower(strings.TrimSpace(hdr.Get("Precedence"))); p {
	case "bulk", "junk", "list", "auto_reply":
		return "Precedence: " + p
	}
	for _, h := range []string{
		"X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", // vacation programs, Exchange
		"X-MS-Exchange-Inbox-Rules-Loop", "X-MS-Exchange-Generated-Message-Source", // Exchange rules and OOF
		"List-Id", "List-Unsubscribe", // a list's copy (RFC 2919, RFC 2369)
	} {
		if v := hdr.Get(h); v != "" {
			return h + ": " + strings.TrimSpace(v)
		}
	}
	return ""
}

// Outcome says what a reply did.
type Outcome struct {
	User    string // the user the token claims ("" if none)
	Stopped bool   // old delivery will stop for User
	Reason  string // why nothing changed
}

// Handle checks one message to the control address. Only a database error
// is returned (as temporary, so the sender retries); a reply that is not
// accepted is logged and answered with success, so a forger learns
// nothing.
func (c *Control) Handle(ctx context.Context, env delivery.Envelope, msg []byte) (*Outcome, error) {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	_, detail := splitRecipient(env)
	hdr := readHeader(msg)
	from := hdr.Get("From")
	out := &Outcome{}
	reject := func(user, reason string) (*Outcome, error) {
		out.Reason = reason
		log.Warn("control reply changes nothing", "claimed_user", user, "reason", reason, "from", from, "envelope_from", env.From)
		key := user
		if key == "" {
			key = c.LocalPart
		}
		if err := c.DB.Log(ctx, key, EventReplyRejected, "reply", fmt.Sprintf("%s (From: %s, envelope %s)", reason, from, env.From)); err != nil {
			return out, delivery.Temporary(fmt.Errorf("notify: log rejected reply for %s: %w", key, err))
		}
		return out, nil
	}
	if detail == "" {
		return reject("", "no token in the recipient address")
	}
	_, user, err := ParseToken(detail)
	if err != nil {
		return reject("", "malformed token")
	}
	out.User = user
	e, err := c.DB.Get(ctx, user)
	if errors.Is(err, state.ErrNotQueued) {
		return reject(user, "token names a user who is not in the queue")
	}
	if err != nil {
		return out, delivery.Temporary(fmt.Errorf("notify: look up %s: %w", user, err))
	}
	if !VerifyToken(c.Secret, detail, e.User, e.MigrationID) {
		return reject(user, "wrong token")
	}
	if why := automatic(env, hdr); why != "" {
		out.Reason = "automatic reply (" + why + ")"
		log.Info("ignoring automatic reply to the confirmation", "user", user, "why", why)
		if err := c.DB.Log(ctx, user, EventReplyAuto, "reply", out.Reason); err != nil {
			return out, delivery.Temporary(fmt.Errorf("notify: log auto reply for %s: %w", user, err))
		}
		return out, nil
	}
	changed, err := c.DB.RequestStop(ctx, user, "reply", "reply to the confirmation from "+from)
	if err != nil {
		return out, delivery.Temporary(fmt.Errorf("notify: stop %s: %w", user, err))
	}
	if !changed {
		// RequestStop logged it (replay, or already stopped / done).
		out.Reason = "already stopped or done"
		log.Info("reply to the confirmation after stop or done: nothing to do", "user", user, "state", e.State)
		return out, nil
	}
	out.Stopped = true
	log.Info("reply to the confirmation: old delivery will stop", "user", user, "from", from)
	if err := c.DB.Log(ctx, user, EventReplyStop, "reply", "From: "+from); err != nil {
		log.Warn("log reply event", "user", user, "err", err)
	}
	return out, nil
}

// readHeader parses the message header leniently ("" values on damage).
func readHeader(msg []byte) textproto.MIMEHeader {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg)))
	h, _ := r.ReadMIMEHeader()
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	return h
}
