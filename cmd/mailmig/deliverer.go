package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mailmig/cmd/mailmig/config"
	"mailmig/notify"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/server/sieve"
	"mailmig/state"
)

// newDeliverer builds the one local delivery path from the configuration:
// Maildirs and Sieve storage from [store], the global script and spam
// folder from [sieve], quota and size from [limits], vacation memory in
// the state database, redirects and vacation replies through the outgoing
// queue, and the migration's control address handled before anything
// else.
func newDeliverer(e *env) (*delivery.Deliverer, error) {
	cfg := e.cfg
	d := &delivery.Deliverer{
		MaildirFor: func(user string) (string, error) {
			p, err := e.maildirFor(user)
			if errors.Is(err, config.ErrUnknownUser) {
				return "", fmt.Errorf("%w: %w", delivery.ErrUnknownUser, err)
			}
			return p, err
		},
		ScriptsFor:         sieveStorageFor(cfg),
		GlobalScript:       cfg.Sieve.GlobalScript,
		GlobalBefore:       cfg.Sieve.GlobalBefore,
		SpamFolder:         cfg.Sieve.SpamFolder,
		SpamHeader:         cfg.Sieve.SpamHeader,
		SpamThreshold:      cfg.Sieve.SpamThreshold,
		GlobalDir:          cfg.Sieve.GlobalDir,
		Spamtest:           &sieve.TestConfig{Header: cfg.Sieve.SpamHeader, Type: "strlen", Max: cfg.Sieve.SpamtestMaxValue},
		QuotaFor:           e.quotaFor,
		OverQuotaTemporary: cfg.Limits.QuotaTemporary,
		MaxMessageBytes:    int64(cfg.Limits.MessageSize),
		Sender:             e.outbound,
		Vacation:           stateVacation{e.db},
		VacationDays:       cfg.Sieve.VacationDefaultDays,
		UserExists: func(user string) (bool, error) {
			return e.localUserExists(context.Background(), user)
		},
		Logger:   e.log.With("component", "delivery"),
		Hostname: cfg.Server.Hostname,
	}
	if e.aliases != nil {
		d.Aliases = e.aliases
	}
	if cfg.Migration.ControlLocalPart != "" {
		secret, err := e.controlSecret(context.Background())
		if err != nil {
			return nil, err
		}
		ctl := &notify.Control{LocalPart: cfg.Migration.ControlLocalPart, Secret: secret, DB: e.db,
			Logger: e.log.With("component", "control")}
		d.Intercept = func(ctx context.Context, env delivery.Envelope, msg msgspool.Source) (bool, error) {
			if !ctl.IsControl(env) {
				return false, nil
			}
			// A reply to the confirmation: read whole (message_size
			// bounds it), as notify parses it.
			b, err := msgspool.ReadAll(msg)
			if err != nil {
				return false, err
			}
			return ctl.Intercept(ctx, env, b)
		}
	}
	if err := d.CheckConfig(); err != nil {
		return nil, err
	}
	// SIGHUP: new global Sieve settings; a broken script keeps the old.
	e.onReload(func(nc *config.Config) {
		err := d.SetGlobal(delivery.GlobalConfig{Script: nc.Sieve.GlobalScript, Before: nc.Sieve.GlobalBefore,
			SpamFolder: nc.Sieve.SpamFolder, SpamHeader: nc.Sieve.SpamHeader, SpamThreshold: nc.Sieve.SpamThreshold, Dir: nc.Sieve.GlobalDir})
		if err != nil {
			e.log.Error("reload: global sieve script refused, keeping the running one", "err", err)
		}
	})
	return d, nil
}

// controlSecret is the HMAC key of the migration's reply tokens:
// [migration] secret, or a random one kept in the state database. The
// confirmation mails must use the same key.
func (e *env) controlSecret(ctx context.Context) ([]byte, error) {
	if s := e.cfg.Migration.Secret; s != "" {
		return []byte(s), nil
	}
	s, err := e.db.Secret(ctx, "reply-token")
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// localUserExists: a server account, or a user in the migration queue
// (dual delivery starts before the account is used).
func (e *env) localUserExists(ctx context.Context, user string) (bool, error) {
	if _, err := e.db.Account(ctx, user); err == nil {
		return true, nil
	} else if !errors.Is(err, state.ErrNoAccount) {
		return false, err
	}
	if _, err := e.db.Get(ctx, user); err == nil {
		return true, nil
	} else if errors.Is(err, state.ErrNotQueued) {
		return false, nil
	} else {
		return false, err
	}
}

// sieveStorageFor returns where a user's scripts live ([store] sieve_dir
// and sieve_active) with the [sieve] limits.
func sieveStorageFor(cfg *config.Config) func(user string) (*sieve.Storage, error) {
	return func(user string) (*sieve.Storage, error) {
		dir, err := cfg.SieveDirFor(user)
		if err != nil {
			return nil, err
		}
		link, err := cfg.SieveActiveFor(user)
		if err != nil {
			return nil, err
		}
		return &sieve.Storage{Dir: dir, ActiveLink: link,
			MaxScriptSize: int64(cfg.Sieve.MaxScriptSize), MaxScripts: cfg.Sieve.MaxScripts,
			GlobalDir: cfg.Sieve.GlobalDir}, nil
	}
}

// stateVacation keeps vacation memory in the state database.
type stateVacation struct{ db *state.DB }

func (s stateVacation) VacationSeen(ctx context.Context, user, handle, sender string, since time.Time) (bool, error) {
	return s.db.VacationSeen(ctx, user, sender, handle, time.Since(since))
}

func (s stateVacation) VacationRecord(ctx context.Context, user, handle, sender string, _ time.Time) error {
	return s.db.VacationRecord(ctx, user, sender, handle)
}

func (s stateVacation) VacationClaim(ctx context.Context, user, handle, sender string, since, at time.Time) (bool, error) {
	return s.db.VacationClaim(ctx, user, sender, handle, since, at)
}

func (s stateVacation) VacationUnclaim(ctx context.Context, user, handle, sender string, at time.Time) error {
	return s.db.VacationUnclaim(ctx, user, sender, handle, at)
}
