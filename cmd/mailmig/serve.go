package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/sdnotify"
)

// starter starts one protocol's listeners; stop shuts them down
// gracefully within its context's deadline.
type starter struct {
	name  string
	start func(ctx context.Context, e *env) (stop func(context.Context) error, err error)
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the IMAP, submission, LMTP and ManageSieve server",
		Description: `Runs every configured listener over the Maildir++ store. SIGHUP re-reads
the configuration and the TLS certificate; SIGTERM or SIGINT stops
gracefully (commands in flight, such as an APPEND, finish). Under systemd
(Type=notify, scripts/systemd/mailmig-serve.service) it reports READY=1
once every listener is bound, and RELOADING=1/READY=1 around a SIGHUP.

With --data DIR (or --dev) every listener is on loopback, trusted, with a
self-signed certificate generated in DIR; the bound addresses are written
to DIR/serve.addrs as JSON.

Examples:
   mailmig serve
   mailmig --data /tmp/mm serve --imap 127.0.0.1:1143 --lmtp 127.0.0.1:2424
   mailmig serve --imap none          # no plain IMAP listener`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dev", Usage: "like --data ./mailmig-dev when --data is not given"},
			&cli.StringFlag{Name: "imap", Usage: "IMAP listener `ADDR` with STARTTLS (\"none\" disables it)"},
			&cli.StringFlag{Name: "imaps", Usage: "IMAP listener `ADDR` with implicit TLS"},
			&cli.StringFlag{Name: "lmtp", Usage: "LMTP TCP listener `ADDR`"},
			&cli.StringFlag{Name: "submission", Usage: "submission listener `ADDR` with STARTTLS"},
			&cli.StringFlag{Name: "submissions", Usage: "submission listener `ADDR` with implicit TLS"},
			&cli.StringFlag{Name: "managesieve", Usage: "ManageSieve listener `ADDR`"},
			&cli.StringFlag{Name: "smarthost", Usage: "relay mail for other domains through `HOST:PORT`"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "how long a graceful stop may take"},
		},
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	if c.Bool("dev") && c.String("data") == "" {
		if err := c.Set("data", "mailmig-dev"); err != nil {
			return err
		}
	}
	notify := sdnotify.FromEnv()
	e, err := loadEnv(c, func(cfg *config.Config) error { return applyServeFlags(c, cfg) })
	if err != nil {
		return err
	}
	defer e.Close()
	for _, w := range e.cfg.Warnings() {
		e.log.Warn(w)
	}

	logFileLimit(e)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	starters := []starter{
		{"lmtp", startLMTP},
		{"submission", startSubmission},
		{"managesieve", startManageSieve},
		{"imap", startIMAP},
		{"web", startWeb},
		{"metrics", startMetrics},
		{"control", startControl},
	}
	var stops []func(context.Context) error
	shutdown := func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), c.Duration("shutdown-timeout"))
		defer scancel()
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](sctx); err != nil {
				e.log.Error("shutdown", "err", err)
			}
		}
	}
	for _, s := range starters {
		stop, err := s.start(ctx, e)
		if err != nil {
			shutdown()
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		if stop != nil {
			stops = append(stops, stop)
		}
	}
	if err := e.writeAddrs(); err != nil {
		shutdown()
		return err
	}
	e.checkPostmaster()
	logTLSFindings(e, e.cfg)
	e.log.Info("mailmig serving", "listeners", e.addrs, "version", version)
	// Type=notify: systemd counts the service as started only now.
	if err := notify.Ready("serving"); err != nil {
		e.log.Warn("sd_notify", "err", err)
	}

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	for s := range sig {
		if s == syscall.SIGHUP {
			notify.Reloading()
			e.reload(c)
			notify.Ready("serving")
			continue
		}
		e.log.Info("stopping", "signal", s.String())
		notify.Stopping()
		shutdown()
		return nil
	}
	return nil
}

// reload re-reads the configuration file and the certificate. Listener
// addresses are fixed at start; other settings reach the registered
// reload hooks.
func (e *env) reload(c *cli.Context) {
	cfg, err := loadConfig(c)
	if err == nil {
		err = applyServeFlags(c, cfg)
	}
	if err != nil {
		e.log.Error("reload: configuration refused, keeping the running one", "err", err)
		return
	}
	if e.tlsReload != nil {
		if err := e.tlsReload.Reload(); err != nil {
			e.log.Error("reload: certificate", "err", err)
		}
	}
	logTLSFindings(e, cfg)
	e.mu.Lock()
	hooks := append([]func(*config.Config){}, e.reloads...)
	e.mu.Unlock()
	for _, h := range hooks {
		h(cfg)
	}
	e.logReloadDiff(e.cfg, cfg)
	e.log.Info("configuration reloaded", "path", cfg.Path, "note", "settings not listed as applied need a restart")
}

// writeAddrs writes the bound listener addresses as JSON beside the data
// (or the state database), for scripts and tests.
func (e *env) writeAddrs() error {
	dir := e.cfg.DataDir
	if dir == "" {
		dir = filepath.Dir(e.cfg.State.Database)
	}
	e.mu.Lock()
	b, err := json.MarshalIndent(e.addrs, "", "  ")
	e.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".serve.addrs.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "serve.addrs"))
}

// applyServeFlags puts --imap and friends into the configuration.
func applyServeFlags(c *cli.Context, cfg *config.Config) error {
	set := func(flag string, ls *[]config.Listener, tlsMode string) error {
		if !c.IsSet(flag) {
			return nil
		}
		addr := c.String(flag)
		// Remove this flag's listener (first one with the TLS mode), then
		// add the new address unless disabled.
		out := (*ls)[:0:0]
		removed := false
		for _, l := range *ls {
			if !removed && (l.TLS == tlsMode || tlsMode == "" && l.TLS != config.TLSImplicit) {
				removed = true
				continue
			}
			out = append(out, l)
		}
		if addr != "none" {
			mode := tlsMode
			if mode == "" {
				mode = config.TLSStartTLS
			}
			if _, _, err := splitAddr(addr); err != nil {
				return fmt.Errorf("--%s %q: %w", flag, addr, err)
			}
			out = append(out, config.Listener{Address: addr, TLS: mode, Trusted: cfg.DataDir != "" && isLoopbackAddr(addr)})
		}
		*ls = out
		return nil
	}
	steps := []error{
		set("imap", &cfg.IMAP.Listeners, config.TLSStartTLS),
		set("imaps", &cfg.IMAP.Listeners, config.TLSImplicit),
		set("submission", &cfg.Submission.Listeners, config.TLSStartTLS),
		set("submissions", &cfg.Submission.Listeners, config.TLSImplicit),
		set("managesieve", &cfg.ManageSieve.Listeners, ""),
	}
	if c.IsSet("lmtp") {
		addr := c.String("lmtp")
		cfg.LMTP.Listeners = nil
		if addr != "none" {
			if _, _, err := splitAddr(addr); err != nil {
				return fmt.Errorf("--lmtp %q: %w", addr, err)
			}
			cfg.LMTP.Listeners = []config.Listener{{Address: addr, TLS: config.TLSNone, Trusted: true}}
		}
	}
	if c.IsSet("smarthost") {
		cfg.Submission.Smarthost = c.String("smarthost")
	}
	return errors.Join(steps...)
}

// logFileLimit raises the soft limit of open files to the hard one (Go's
// runtime does it at start on Linux; this covers the rest) and logs the
// figure: every connection costs a descriptor, and when they run out
// accept fails until some close (server/listen backs off, never stops).
func logFileLimit(e *env) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	e.log.Info("open file limit", "soft", lim.Cur, "hard", lim.Max)
}
