package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"mailmig/migrate/paths"
	"mailmig/migrate/spool"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/state"
)

// DeliveredJournal is the file in a user's new Maildir root listing the
// convert.ContentHash of every message dual delivery put on both sides,
// one hex hash a line. The cutover pass (convert.DeliveredJournal, the
// same name) does not bring such a message back once the user deleted it
// in the new store.
const DeliveredJournal = "mailmig-delivered"

// Route says where a delivery goes.
type Route int

// Routes.
const (
	RouteOld  Route = iota + 1 // old mbox only (not yet in dual)
	RouteBoth                  // old mbox and new store (dual window)
	RouteNew                   // new store only (done, or a server-only account)
)

func (r Route) String() string {
	switch r {
	case RouteOld:
		return "old"
	case RouteBoth:
		return "both"
	case RouteNew:
		return "new"
	}
	return "none"
}

// RouteFor maps a queue entry to its route. A user in needs-attention
// keeps the route of the state it stopped in: once delivery was switched
// to both sides it stays so until the postmaster resolves it.
func RouteFor(e *state.Entry) Route {
	s := e.State
	if s == state.NeedsAttention {
		s = e.AttentionFrom
	}
	switch s {
	case state.Queued, "":
		return RouteOld
	case state.Done:
		return RouteNew
	}
	return RouteBoth
}

// Router is `mailmig deliver`: the old MTA's local delivery during the
// migration.
type Router struct {
	DB *state.DB
	// Paths resolves the old INBOX (it fails with paths.ErrUnknownUser
	// for a user the old side does not know).
	Paths func(user string) (*paths.User, error)
	// NewStore delivers into the new store (delivery.Deliverer).
	NewStore func(ctx context.Context, env delivery.Envelope, msg msgspool.Source) error
	// HasAccount reports whether user has a server account.
	HasAccount func(ctx context.Context, user string) (bool, error)
	// Domain makes the envelope recipient user@Domain.
	Domain string
	// ControlLocalPart is the migration's control address (replies to
	// the confirmation): mail to it goes straight to NewStore, whose
	// Intercept hook handles it.
	ControlLocalPart string
	Spool            spool.Options
	// Aliases, if set, expands an alias name to accounts and external
	// addresses (isAlias false for a plain name); each account is then
	// routed by its own queue state, the external addresses go to
	// Forward. With an MTA piping every local recipient to deliver, this
	// is where postmaster@ and first.last@ are resolved.
	Aliases func(name string) (users, external []string, isAlias bool, err error)
	// Forward hands a message to the outgoing queue.
	Forward func(ctx context.Context, from string, to []string, msg msgspool.Source) error
	// SpoolOwner names the owner and group of a spool file delivery
	// creates (the user and group mail, as local(8)); nil leaves the
	// file to the process's uid.
	SpoolOwner func(user string) (uid, gid int, err error)
	// Maildir, if set, names user's new Maildir root, where the deliver
	// journal (DeliverJournal) of the new-only route lives; nil delivers
	// that route without the journal.
	Maildir func(user string) (string, error)
	// Now dates the From_ line (time.Now if nil).
	Now    func() time.Time
	Logger *slog.Logger
	// Delivered, if set, is called (under the spool lock) after a message
	// reached both sides, with its convert.ContentHash; cmd/mailmig records
	// it in the new Maildir's DeliveredJournal so the cutover pass does not
	// bring back a dual-delivered message the user deleted in the new
	// store.
	Delivered func(p *paths.User, hash string)
	// OnLock, if set, is told how long each old-side append held the
	// spool lock (benchmarks).
	OnLock func(held time.Duration)
}

// Delivered says what Deliver did.
type Delivered struct {
	Route    Route
	LockHeld time.Duration // how long the old INBOX was locked (0: not)
}

func (r *Router) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Router) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// Deliver delivers msg from sender to user by the user's queue state;
// msg is streamed to each side, never read into memory whole.
// Errors map to exit codes with delivery.ExitCode: a TemporaryError (75)
// leaves nothing behind on either side; delivery.ErrUnknownUser is 67.
//
// Users not in the queue: if the old spool file exists, or the old side
// knows the user (home directory) and there is no server account, the
// message goes to the old mbox (the old world continues unchanged);
// otherwise a server account gets it in the new store; else the user is
// unknown.
func (r *Router) Deliver(ctx context.Context, sender, user string, msg msgspool.Source) (*Delivered, error) {
	env := delivery.Envelope{From: sender, To: user + "@" + r.Domain, User: user}
	if u, detail, ok := strings.Cut(user, "+"); ok { // RFC 5233 subaddress
		env.User, env.Detail = u, detail
		user = u
	}
	if r.ControlLocalPart != "" && strings.EqualFold(user, r.ControlLocalPart) {
		return &Delivered{Route: RouteNew}, r.NewStore(ctx, env, msg)
	}
	if r.Aliases != nil {
		users, external, isAlias, err := r.Aliases(user)
		if err != nil && !errors.Is(err, delivery.ErrUnknownUser) {
			return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: aliases: %w", user, err))
		}
		if isAlias {
			return r.deliverAlias(ctx, sender, user, users, external, msg)
		}
	}
	e, err := r.DB.Get(ctx, user)
	switch {
	case errors.Is(err, state.ErrNotQueued):
		return r.notQueued(ctx, env, msg)
	case err != nil:
		return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: queue: %w", user, err))
	}
	if RouteFor(e) == RouteNew {
		return &Delivered{Route: RouteNew}, r.deliverNew(ctx, env, msg)
	}
	p, err := r.Paths(user)
	if err != nil {
		return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: paths: %w", user, err))
	}
	opts := r.Spool
	opts.Create = true // a queued user with no spool yet gets one, as the old MTA would
	opts.Owner = r.owner(user)
	l, err := spool.Lock(ctx, p.Inbox, opts)
	if err != nil {
		return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
	}
	defer l.Unlock()
	// Re-read the state under the lock: the runner moves users to done
	// under it, and the converter reads the INBOX under it.
	e, err = r.DB.Get(ctx, user)
	if err != nil {
		return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: queue: %w", user, err))
	}
	route := RouteFor(e)
	res := &Delivered{Route: route}
	if route == RouteNew {
		l.Unlock()
		return res, r.deliverNew(ctx, env, msg)
	}
	if route == RouteBoth && p.Maildir != "" {
		// Journaled: exactly once per side across kills and retries.
		if err := r.deliverBoth(ctx, l, env, p, msg, opts); err != nil {
			return nil, err
		}
		res.LockHeld = l.Held()
		if err := l.Unlock(); err != nil {
			r.log().Warn("unlock old INBOX", "user", user, "err", err)
		}
		if r.OnLock != nil {
			r.OnLock(res.LockHeld)
		}
		return res, nil
	}
	if route == RouteOld && p.Maildir != "" {
		// Journaled too: a kill after the append is not a second copy.
		if err := r.deliverOld(l, env, p, msg, opts); err != nil {
			return nil, err
		}
		res.LockHeld = l.Held()
		if err := l.Unlock(); err != nil {
			r.log().Warn("unlock old INBOX", "user", user, "err", err)
		}
		if r.OnLock != nil {
			r.OnLock(res.LockHeld)
		}
		return res, nil
	}
	ar, err := l.AppendFrom(sender, r.now(), msgspool.NewReader(msg), opts)
	if err != nil {
		return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, err))
	}
	if route == RouteBoth {
		if err := r.NewStore(ctx, env, msg); err != nil {
			if rerr := l.Rollback(ar, opts); rerr != nil {
				// The old copy stays; a retry duplicates it there. Say so.
				r.log().Error("new store failed and the old copy could not be taken back", "user", user, "err", err, "rollback_err", rerr)
				return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: new store: %w (old copy kept: %v)", user, err, rerr))
			}
			return nil, fmt.Errorf("migrate: deliver to %s: new store (old copy taken back): %w", user, err)
		}
		if r.Delivered != nil {
			if hash, err := hashFrom(msgspool.NewReader(msg)); err != nil {
				r.log().Warn("record dual delivery", "user", user, "err", err)
			} else {
				r.Delivered(p, hash)
			}
		}
	}
	res.LockHeld = l.Held()
	if err := l.Unlock(); err != nil {
		r.log().Warn("unlock old INBOX", "user", user, "err", err)
	}
	if r.OnLock != nil {
		r.OnLock(res.LockHeld)
	}
	return res, nil
}

func (r *Router) notQueued(ctx context.Context, env delivery.Envelope, msg msgspool.Source) (*Delivered, error) {
	user := env.User
	p, perr := r.Paths(user)
	if perr == nil {
		if _, err := os.Stat(p.Inbox); err == nil {
			return r.oldOnly(ctx, env, p, msg, false)
		}
	}
	if r.HasAccount != nil {
		ok, err := r.HasAccount(ctx, user)
		if err != nil {
			return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: accounts: %w", user, err))
		}
		if ok {
			return &Delivered{Route: RouteNew}, r.deliverNew(ctx, env, msg)
		}
	}
	if perr == nil {
		return r.oldOnly(ctx, env, p, msg, true)
	}
	if errors.Is(perr, paths.ErrUnknownUser) {
		return nil, fmt.Errorf("migrate: deliver to %s: %w", user, delivery.ErrUnknownUser)
	}
	return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", user, perr))
}

func (r *Router) oldOnly(ctx context.Context, env delivery.Envelope, p *paths.User, msg msgspool.Source, create bool) (*Delivered, error) {
	opts := r.Spool
	opts.Create = create
	opts.Owner = r.owner(env.User)
	res, err := spool.AppendFrom(ctx, p.Inbox, env.From, r.now(), msgspool.NewReader(msg), opts)
	if err != nil {
		// Includes a spool that vanished between the check and the lock.
		return nil, delivery.Temporary(fmt.Errorf("migrate: deliver to %s: %w", env.User, err))
	}
	if r.OnLock != nil {
		r.OnLock(res.LockHeld)
	}
	return &Delivered{Route: RouteOld, LockHeld: res.LockHeld}, nil
}

// owner is the spool.Options.Owner for user's spool.
func (r *Router) owner(user string) func() (int, int, error) {
	if r.SpoolOwner == nil {
		return nil
	}
	return func() (int, int, error) { return r.SpoolOwner(user) }
}

// deliverAlias routes each member of an alias by its own state. A
// temporary failure of any member makes the whole delivery temporary
// (the MTA retries; members already served may get a second copy, which
// is logged), a permanent one is returned when no member got the
// message.
func (r *Router) deliverAlias(ctx context.Context, sender, alias string, users, external []string, msg msgspool.Source) (*Delivered, error) {
	res := &Delivered{Route: RouteNew}
	var errs []error
	served := 0
	if len(external) > 0 {
		if r.Forward == nil {
			errs = append(errs, delivery.Temporary(fmt.Errorf("migrate: alias %s: no outgoing queue for %v", alias, external)))
		} else if err := r.Forward(ctx, sender, external, msg); err != nil {
			errs = append(errs, delivery.Temporary(fmt.Errorf("migrate: alias %s: forward: %w", alias, err)))
		} else {
			served++
		}
	}
	for _, u := range users {
		d, err := r.deliverMember(ctx, sender, u, msg)
		if err != nil {
			r.log().Warn("alias member not delivered", "alias", alias, "user", u, "err", err)
			errs = append(errs, err)
			continue
		}
		served++
		if d.Route < res.Route {
			res.Route = d.Route
		}
	}
	if len(errs) == 0 {
		return res, nil
	}
	for _, err := range errs {
		if delivery.IsTemporary(err) {
			if served > 0 {
				r.log().Warn("alias delivery will be retried; members already served may get the message twice", "alias", alias)
			}
			return nil, err
		}
	}
	if served > 0 {
		return res, nil
	}
	return nil, errs[0]
}

// deliverMember is Deliver for an account named by an alias (no further
// alias expansion).
func (r *Router) deliverMember(ctx context.Context, sender, user string, msg msgspool.Source) (*Delivered, error) {
	rr := *r
	rr.Aliases = nil
	return rr.Deliver(ctx, sender, user, msg)
}
