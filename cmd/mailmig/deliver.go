package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
	"mailmig/migrate"
	"mailmig/server/aliases"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/state"
)

// deliverCommand is the old MTA's local delivery agent during the
// migration: one message on stdin for one user, routed by the user's
// queue state (see migrate.Router). Exit codes are sysexits: 0 delivered,
// 67 unknown user, 75 try again later (nothing was left behind), 64 usage.
func deliverCommand() *cli.Command {
	return &cli.Command{
		Name:      "deliver",
		Usage:     "deliver one message from stdin for USER (the old MTA's pipe during the migration)",
		ArgsUsage: "USER",
		Description: `Routes by the user's migration state: not yet in dual delivery → old mbox
only; dual, copying, confirm, cutover → old mbox and new store; done → new
store only. Users not in the queue: the old mbox when the spool file exists
(or the old side knows the user and there is no server account), else the
new store for a server account, else exit 67.

A leading "From " line (Postfix pipe flag F, sendmail) is taken as the
envelope sender when -f is not given, and not stored.

USER may be a full address (Postfix's ${recipient}: user+extension@domain
of a local domain), so the +TOKEN of a reply to the confirmation arrives
intact. Names in the [aliases] file are expanded here, each account routed
by its own state. deliver reads no TLS key; a spool it creates belongs to
the user, group mail, mode 0600, as local(8) makes it (only root may do
that: as another user a missing spool makes it exit 75).

Examples (Postfix: the files in docs/postfix/, see docs/deploying.md):
   master.cf: mailmig unix - n n - - pipe
     flags=DRq user=mailmig:mail argv=/usr/sbin/mailmig deliver -f ${sender} ${recipient}
   echo "Subject: hi" | mailmig deliver -f bob@example.org alice`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "f", Aliases: []string{"from"}, Usage: "envelope `SENDER` (\"\" or <> = null sender)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return withExit(delivery.ExUsage, errors.New("deliver: need exactly one USER"))
			}
			user := c.Args().First()
			e, err := loadEnvTLS(c, false) // no TLS key: see docs/deploying.md
			if err != nil {
				return withExit(delivery.ExTempFail, fmt.Errorf("deliver: %w", err))
			}
			defer e.Close()
			// The message goes to memory up to spool_threshold, beyond it
			// to an unlinked temporary file: delivery streams from there
			// to each side, so a big message never sits in memory whole.
			in := bufio.NewReaderSize(os.Stdin, 64<<10)
			sender, err := readFromLine(in, c.String("f"), c.IsSet("f"))
			if err != nil {
				return withExit(delivery.ExTempFail, fmt.Errorf("deliver: read message: %w", err))
			}
			msg, err := msgspool.Read(in, new(bytes.Buffer), int64(e.cfg.Connections.SpoolThreshold), "")
			defer msg.Close()
			if err != nil {
				return withExit(delivery.ExTempFail, fmt.Errorf("deliver: read message: %w", err))
			}
			if msg.Size() == 0 {
				return withExit(delivery.ExDataErr, errors.New("deliver: empty message"))
			}
			if local, domain, ok := strings.Cut(user, "@"); ok {
				// ${recipient}: user+extension@domain (the +TOKEN of a
				// confirmation reply stays intact).
				if !e.isLocalDomain(domain) {
					return withExit(delivery.ExNoUser, fmt.Errorf("deliver: %s: %s is not a local domain (server.domains)", user, domain))
				}
				user = local
			}
			ctx, cancel := context.WithTimeout(c.Context, 5*time.Minute)
			defer cancel()
			res, err := newRouter(e).Deliver(ctx, sender, user, msg)
			countSharedDelivery(e, err)
			if err != nil {
				code := delivery.ExitCode(err)
				e.log.Warn("deliver failed", "user", user, "from", sender, "exit", code, "err", err)
				return withExit(code, err)
			}
			e.log.Debug("delivered", "user", user, "from", sender, "route", res.Route, "lock_held", res.LockHeld)
			return nil
		},
	}
}

// readFromLine consumes a leading "From " line of in (Postfix pipe flag
// F, sendmail), which is not stored, and returns the envelope sender: its
// second field unless -f was given (set), else sender.
func readFromLine(in *bufio.Reader, sender string, set bool) (string, error) {
	if head, err := in.Peek(5); err != nil || string(head) != "From " {
		return sender, nil
	}
	var line []byte // its start: enough for the sender
	for {
		seg, err := in.ReadSlice('\n')
		if len(line) < 4096 {
			line = append(line, seg[:min(len(seg), 4096-len(line))]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			return "", err
		}
		break
	}
	if !set {
		if f := bytes.Fields(line); len(f) >= 2 {
			sender = string(f[1])
		}
	}
	return sender, nil
}

// oldInboxPaths resolves what deliver needs of the old side, the INBOX
// spool. When its template does not use %h the home directory is not
// looked up, so a user missing from the home source still gets mail
// (as the old MTA would have delivered it); users unknown to the old side
// are recognised by the home lookup only when the template needs it.
func oldInboxPaths(e *env) func(user string) (*config.UserPaths, error) {
	return func(user string) (*config.UserPaths, error) {
		if config.NeedsHome(e.cfg.Old.Inbox) {
			return e.cfg.PathsFor(user)
		}
		if _, err := e.cfg.HomeFor(user); err != nil {
			if _, qerr := e.db.Get(context.Background(), user); qerr != nil {
				return nil, err // neither the old side nor the queue knows the user
			}
		}
		maildir, _ := e.cfg.MaildirFor(user)
		return &config.UserPaths{User: user, Inbox: config.Expand(e.cfg.Old.Inbox, user, ""), Maildir: maildir}, nil
	}
}

// recordDelivered appends the content hash of a dual-delivered message to
// the user's migrate.DeliveredJournal (best effort: a lost line only means
// a message the user deleted in the new store may come back at cutover).
func recordDelivered(e *env) func(p *config.UserPaths, hash string) {
	return func(p *config.UserPaths, hash string) {
		if p.Maildir == "" {
			return
		}
		path := filepath.Join(p.Maildir, migrate.DeliveredJournal)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err == nil {
			_, err = f.WriteString(hash + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			e.log.Warn("record dual delivery", "user", p.User, "path", path, "err", err)
		}
	}
}

// newRouter builds the delivery router of `mailmig deliver`.
func newRouter(e *env) *migrate.Router {
	return &migrate.Router{
		DB:    e.db,
		Paths: oldInboxPaths(e),
		NewStore: func(ctx context.Context, env delivery.Envelope, msg msgspool.Source) error {
			res, err := e.deliverer.Deliver(ctx, env, msg)
			if err == nil && res != nil && res.ScriptErr != nil {
				countSharedSieveError(e)
			}
			return err
		},
		HasAccount: func(ctx context.Context, user string) (bool, error) {
			_, err := e.db.Account(ctx, user)
			if errors.Is(err, state.ErrNoAccount) {
				return false, nil
			}
			return err == nil, err
		},
		Domain:           e.cfg.Server.Domains[0],
		ControlLocalPart: e.cfg.Migration.ControlLocalPart,
		Now:              e.db.Now,
		Maildir:          e.cfg.MaildirFor,
		Delivered:        recordDelivered(e),
		SpoolOwner:       spoolOwner,
		Aliases: func(name string) ([]string, []string, bool, error) {
			exp, err := e.aliases.Expand(name)
			if errors.Is(err, aliases.ErrUnknown) {
				return nil, nil, false, fmt.Errorf("%w: %w", delivery.ErrUnknownUser, err)
			}
			return exp.Users, exp.External, exp.Alias, err
		},
		Forward: func(ctx context.Context, from string, to []string, msg msgspool.Source) error {
			return e.outbound.Send(ctx, from, to, msgspool.NewReader(msg))
		},
		Logger: e.log.With("component", "deliver"),
	}
}

// spoolOwner is who a spool deliver creates belongs to: the user and
// group mail, as Postfix's local(8) makes /var/mail/USER (mode 0600).
func spoolOwner(name string) (int, int, error) {
	u, err := osuser.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, err
	}
	if g, err := osuser.LookupGroup("mail"); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			gid = n
		}
	}
	return uid, gid, nil
}

// isLocalDomain reports whether domain is one of server.domains.
func (e *env) isLocalDomain(domain string) bool {
	for _, d := range e.cfg.Server.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}
