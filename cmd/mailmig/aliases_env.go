package main

import (
	"context"
	"errors"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/aliases"
)

// newAliasTable loads [aliases] file with the configuration's domains and
// postmaster accounts; names are accounts when a server account or a
// queued user has them (as for delivery).
func newAliasTable(e *env) (*aliases.Table, error) {
	t := &aliases.Table{
		Path:       e.cfg.Aliases.File,
		Domains:    e.cfg.Server.Domains,
		Postmaster: e.cfg.PostmasterAccounts(),
		IsUser: func(name string) (bool, error) {
			return e.localUserExists(context.Background(), name)
		},
	}
	if err := t.Load(); err != nil {
		return nil, err
	}
	// SIGHUP re-reads the file; a broken file keeps the running map.
	e.onReload(func(nc *config.Config) {
		if nc.Aliases.File != t.Path {
			e.log.Warn("reload: aliases.file changed: needs a restart", "running", t.Path, "new", nc.Aliases.File)
			return
		}
		if err := t.Load(); err != nil {
			e.log.Error("reload: alias file refused, keeping the running one", "err", err)
			return
		}
		e.log.Info("reload: aliases re-read", "file", t.Path, "names", len(t.Map().Names()))
	})
	return t, nil
}

// checkPostmaster logs an error when postmaster@ leads nowhere (RFC 5321
// §4.5.1: it must work); serve calls it at start. Mail to users still
// flows.
func (e *env) checkPostmaster() {
	if e.aliases == nil {
		return
	}
	if _, err := e.aliases.Expand("postmaster"); err != nil {
		e.log.Error("postmaster@ is not deliverable: add a postmaster entry to the alias file or an account named in [aliases] postmaster", "err", err)
	}
}

// recipientExists: an account, a queued user, or an alias that leads to
// one (or to an external address).
func (e *env) recipientExists(ctx context.Context, name string) (bool, error) {
	if e.aliases == nil {
		return e.localUserExists(ctx, name)
	}
	_, err := e.aliases.Expand(name)
	if errors.Is(err, aliases.ErrUnknown) {
		return false, nil
	}
	return err == nil, err
}
