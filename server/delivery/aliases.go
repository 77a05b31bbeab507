package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"mailmig/server/aliases"
	"mailmig/server/msgspool"
)

// AliasExpander expands recipients' local names; *aliases.Table
// implements it.
type AliasExpander interface {
	// Expand gives the accounts and external addresses of a name, or an
	// error wrapping aliases.ErrUnknown.
	Expand(name string) (aliases.Expansion, error)
	// AliasesOf lists the alias names that reach user alone.
	AliasesOf(user string) []string
}

var _ AliasExpander = (*aliases.Table)(nil)

// aliasDone marks a context whose delivery was already expanded, so an
// account named like an alias ("alice: alice, backup") is not expanded
// again.
type aliasDone struct{}

// deliverAlias delivers a message for an alias: one copy per account
// (each through its own Sieve script and quota) and one hand-over of the
// external addresses to the outgoing queue. handled is false for a plain
// account. The first account's failure is returned when no copy could be
// placed anywhere, so the MTA keeps the message; once one copy is
// placed, later failures are logged (as local(8) and dovecot do for
// alias fan-out, the message is never duplicated by a retry).
func (d *Deliverer) deliverAlias(ctx context.Context, env Envelope, msg msgspool.Source) (*Result, bool, error) {
	if d.Aliases == nil || ctx.Value(aliasDone{}) != nil {
		return nil, false, nil
	}
	exp, err := d.Aliases.Expand(env.User)
	if errors.Is(err, aliases.ErrUnknown) {
		return nil, true, fmt.Errorf("delivery: %q: %w: %w", env.User, ErrUnknownUser, err)
	}
	if err != nil {
		return nil, true, Temporary(wrapUser(env.User, "expand alias", err))
	}
	if !exp.Alias {
		return nil, false, nil
	}
	log := d.state.log.With("alias", env.User, "rcpt", env.To, "from", env.From)
	ctx = context.WithValue(ctx, aliasDone{}, true)
	total := &Result{}
	placed := false
	var firstErr error
	if len(exp.External) > 0 {
		if d.Sender == nil {
			firstErr = Temporary(fmt.Errorf("delivery: alias %s forwards to %s but no outgoing queue is configured", env.User, strings.Join(exp.External, ", ")))
		} else if err := d.Sender.Send(ctx, env.From, exp.External, msgspool.NewReader(msg)); err != nil {
			firstErr = Temporary(fmt.Errorf("delivery: alias %s: forward to %s: %w", env.User, strings.Join(exp.External, ", "), err))
		} else {
			placed = true
			total.Redirected = append(total.Redirected, exp.External...)
		}
	}
	for _, u := range exp.Users {
		sub := env
		sub.User = u
		if len(exp.Users) > 1 {
			// A list's subaddress is not its members'.
			sub.Detail = ""
		}
		res, err := d.Deliver(ctx, sub, msg)
		if err != nil {
			log.Warn("alias member not delivered", "user", u, "err", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		placed = true
		total.Stored = append(total.Stored, res.Stored...)
		total.Redirected = append(total.Redirected, res.Redirected...)
		total.VacationTo = append(total.VacationTo, res.VacationTo...)
	}
	log.Info("alias expanded", "users", exp.Users, "external", exp.External)
	if !placed {
		return nil, true, firstErr
	}
	return total, true, nil
}

// ownAliasAddresses are the addresses of env.User's aliases in the
// recipient's domain (for vacation's own-address check).
func (d *Deliverer) ownAliasAddresses(env Envelope) []string {
	if d.Aliases == nil {
		return nil
	}
	domain := ""
	if i := strings.LastIndexByte(env.To, '@'); i >= 0 {
		domain = env.To[i+1:]
	}
	var out []string
	for _, a := range d.Aliases.AliasesOf(env.User) {
		if domain != "" {
			out = append(out, a+"@"+domain)
		}
	}
	return out
}
