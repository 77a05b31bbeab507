package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailmig/mailstore"
	"mailmig/server/msgspool"
	"mailmig/server/sieve"
)

// DefaultGlobalScript returns the site's default global script (DESIGN.md
// "Server defaults"): messages whose header field contains threshold
// (X-Spam-Level, "*****") are filed into folder.
func DefaultGlobalScript(header, threshold, folder string) string {
	return "require \"fileinto\";\r\nif header :contains " + quote(header) + " " + quote(threshold) +
		" { fileinto " + quote(folder) + "; }\r\n"
}

// quote makes s a Sieve quoted string (RFC 5228 §2.4.2).
func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// deliverState is the Deliverer's lazily built, shared state.
type deliverState struct {
	once     sync.Once
	global   atomic.Pointer[globalState]
	log      *slog.Logger
	vacation VacationStore

	mu      sync.Mutex
	stores  map[string]*cachedStore
	scripts map[string]*cachedScript

	// scriptErrors counts deliveries whose scripts failed (ScriptErrors).
	scriptErrors atomic.Uint64

	// vacLocks serialise vacation replies per user, handle and sender.
	vacMu    sync.Mutex
	vacLocks map[string]*vacLock
}

// ScriptErrors is the number of deliveries so far whose Sieve scripts
// failed at run time or did not compile (the message then went to INBOX,
// or the global script ran instead), for metrics.
func (d *Deliverer) ScriptErrors() uint64 { return d.state.scriptErrors.Load() }

type cachedStore struct {
	root   string
	qb, qm int64
	store  *mailstore.Store
	// folderMu serialises folder look-up and creation, so a delivery
	// never finds a folder another one is still creating.
	folderMu sync.Mutex
}

type cachedScript struct {
	size  int64
	mtime time.Time
	ino   uint64
	s     *sieve.Script
	err   error
}

// GlobalConfig is the site-wide Sieve setting, the part of a Deliverer
// that SetGlobal can change while it runs (SIGHUP).
type GlobalConfig struct {
	// Script is the global script's text, or the path of a file holding
	// it (a single line starting with '/'); "" means
	// DefaultGlobalScript(SpamHeader, SpamThreshold, SpamFolder).
	Script string
	// Before runs the global script before the user's active one.
	Before bool
	// SpamFolder ("" = "junk") is created on first use and subscribed.
	SpamFolder string
	// SpamHeader and SpamThreshold make the default script ("" =
	// "X-Spam-Level" and "*****").
	SpamHeader, SpamThreshold string
	// Dir is the global script directory (Deliverer.GlobalDir).
	Dir string
}

// globalState is a compiled GlobalConfig.
type globalState struct {
	cfg    GlobalConfig
	script *sieve.Script
	err    error
	// spam is the built-in spam rule, `include :global "spam"` when
	// Dir has no spam.sieve.
	spam *sieve.Script
}

func (g *globalState) spamFolder() string {
	if g.cfg.SpamFolder == "" {
		return "junk"
	}
	return g.cfg.SpamFolder
}

func compileGlobal(cfg GlobalConfig) *globalState {
	g := &globalState{cfg: cfg}
	h, th := cfg.SpamHeader, cfg.SpamThreshold
	if h == "" {
		h = "X-Spam-Level"
	}
	if th == "" {
		th = "*****"
	}
	spam, err := sieve.Compile([]byte(DefaultGlobalScript(h, th, g.spamFolder())), sieve.Options{Name: "global spam rule"})
	if err != nil {
		g.err = fmt.Errorf("delivery: spam rule: %w", err)
		return g
	}
	g.spam = spam
	src, err := globalText(cfg, g.spamFolder())
	if err == nil {
		g.script, err = sieve.Compile([]byte(src), sieve.Options{Name: "global script", Include: g.includeSource(nil)})
	}
	if err != nil {
		g.err = fmt.Errorf("delivery: global sieve script: %w", err)
	}
	return g
}

func (d *Deliverer) init() {
	d.state.once.Do(func() {
		st := &d.state
		st.log = d.Logger
		if st.log == nil {
			st.log = slog.Default()
		}
		st.vacation = d.Vacation
		if st.vacation == nil {
			st.vacation = NewMemoryVacation()
		}
		st.stores = map[string]*cachedStore{}
		st.scripts = map[string]*cachedScript{}
		st.global.Store(compileGlobal(GlobalConfig{Script: d.GlobalScript, Before: d.GlobalBefore,
			SpamFolder: d.SpamFolder, SpamHeader: d.SpamHeader, SpamThreshold: d.SpamThreshold, Dir: d.GlobalDir}))
	})
}

// SetGlobal replaces the global Sieve settings (on SIGHUP). A script that
// does not compile is refused and the running one kept.
func (d *Deliverer) SetGlobal(cfg GlobalConfig) error {
	d.init()
	g := compileGlobal(cfg)
	if g.err != nil {
		return g.err
	}
	d.state.global.Store(g)
	return nil
}

func (d *Deliverer) global() *globalState {
	d.init()
	return d.state.global.Load()
}

func globalText(cfg GlobalConfig, spamFolder string) (string, error) {
	g := strings.TrimSpace(cfg.Script)
	if g == "" {
		h, th := cfg.SpamHeader, cfg.SpamThreshold
		if h == "" {
			h = "X-Spam-Level"
		}
		if th == "" {
			th = "*****"
		}
		return DefaultGlobalScript(h, th, spamFolder), nil
	}
	if strings.HasPrefix(g, "/") && !strings.ContainsAny(g, "\n;") {
		b, err := os.ReadFile(g)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return cfg.Script, nil
}

// CheckConfig compiles the global script and reports its error, so a
// server can refuse to start with a broken one.
func (d *Deliverer) CheckConfig() error {
	return d.global().err
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Deliver delivers msg (the whole message, CRLF or LF line ends) for one
// recipient. msg is read, never held whole: the header for Sieve, the
// rest streamed into each stored or sent copy and through body tests. On success the message is stored (fsynced), discarded,
// redirected or otherwise handled as the scripts said; on error nothing
// was stored and the error says how to answer (SMTPStatus, ExitCode).
func (d *Deliverer) Deliver(ctx context.Context, env Envelope, msg msgspool.Source) (*Result, error) {
	d.init()
	log := d.state.log.With("user", env.User, "rcpt", env.To, "from", env.From)
	if d.MaxMessageBytes > 0 && msg.Size() > d.MaxMessageBytes {
		return nil, fmt.Errorf("delivery: user %s: %d bytes, limit %d: %w", env.User, msg.Size(), d.MaxMessageBytes, ErrTooBig)
	}
	if d.Intercept != nil {
		handled, err := d.Intercept(ctx, env, msg)
		if err != nil {
			return nil, wrapUser(env.User, "intercept", err)
		}
		if handled {
			log.Info("delivery intercepted")
			return &Result{Intercepted: true}, nil
		}
	}
	if res, handled, err := d.deliverAlias(ctx, env, msg); handled {
		return res, err
	}
	if d.UserExists != nil {
		ok, err := d.UserExists(env.User)
		if err != nil {
			return nil, Temporary(wrapUser(env.User, "look up", err))
		}
		if !ok {
			return nil, fmt.Errorf("delivery: user %q: %w", env.User, ErrUnknownUser)
		}
	}
	cs, err := d.storeFor(env.User)
	if err != nil {
		return nil, err
	}
	// Only the header is read into memory; the body stays in msg (body
	// tests stream it).
	m, err := sieve.NewMessageReader(msg, msg.Size())
	if err != nil {
		return nil, Temporary(wrapUser(env.User, "read message", err))
	}
	out, scriptErr := d.runScripts(ctx, env, m, cs)
	res := &Result{ScriptErr: scriptErr}
	switch {
	case scriptErr != nil && out != nil:
		log.Error("user's sieve script does not compile, the global one ran instead", "err", scriptErr)
		d.state.scriptErrors.Add(1)
	case scriptErr != nil:
		// RFC 5228 §2.10.6: only the implicit keep. The log names the
		// script, the line and the error (pigeonhole's wording).
		var re *sieve.RuntimeError
		if errors.As(scriptErr, &re) {
			log.Error("sieve run-time error, keeping the message in INBOX", "script", re.Script, "line", re.Line, "error", re.Msg)
		} else {
			log.Error("sieve failed, keeping the message in INBOX", "err", scriptErr)
		}
		d.state.scriptErrors.Add(1)
		out = &sieve.Outcome{ImplicitKeep: true}
	}
	// RFC 5228 §2.10.6: an action that cannot run is a run-time error,
	// and then only the implicit keep happens (pigeonhole: "specified
	// redirect address is invalid", message kept). Every address an
	// action sends to is checked before any action runs.
	redirects := make([]string, 0, len(out.Redirects))
	for _, a := range out.Redirects {
		addr, err := RedirectAddress(a)
		if err != nil {
			res.ScriptErr = fmt.Errorf("sieve: redirect: %w", err)
			log.Error("sieve run-time error, keeping the message in INBOX", "err", res.ScriptErr)
			out = &sieve.Outcome{ImplicitKeep: true}
			redirects = nil
			break
		}
		redirects = append(redirects, addr)
	}
	out.Redirects = uniqueRedirects(redirects)
	if out.Reject != nil {
		log.Info("rejected by sieve", "reason", out.Reject.Reason)
		return nil, &RejectError{Reason: out.Reject.Reason, Extended: out.Reject.Extended}
	}
	// A fileinto that cannot store (no such folder and no :create, or a
	// name the store refuses) is a run-time error too: pigeonhole then
	// runs none of the actions and keeps the message in INBOX.
	if err := d.checkFolders(cs, out); err != nil {
		res.ScriptErr = fmt.Errorf("sieve: fileinto: %w", err)
		log.Error("sieve run-time error, keeping the message in INBOX", "err", res.ScriptErr)
		d.state.scriptErrors.Add(1)
		out = &sieve.Outcome{ImplicitKeep: true}
	}
	body := msg
	if len(out.HeaderEdits) > 0 {
		head, err := msgspool.HeaderPrefix(msg)
		if err == nil {
			body, err = applyHeaderEdits(msg, head, out.HeaderEdits)
		}
		if err != nil {
			return nil, Temporary(wrapUser(env.User, "read message", err))
		}
	}
	flags := imapFlags(out.Flags)

	var targets []string
	for _, mb := range out.Mailboxes {
		targets = appendFolder(targets, mb)
	}
	if out.KeepsMessage() {
		targets = appendFolder(targets, "INBOX")
	}
	for _, t := range targets {
		create := containsFold(out.Create, t)
		// RFC 5232 §5: ":flags" sets the flags of that one copy; the
		// others get the internal flag variable.
		fl := flags
		if f, ok := out.MailboxFlags[t]; ok {
			fl = imapFlags(f)
		} else if t == "INBOX" && out.KeepFlags != nil {
			fl = imapFlags(out.KeepFlags)
		}
		if err := d.store(ctx, cs, t, create, body, fl, res, log); err != nil {
			if len(res.Stored) > 0 {
				log.Error("storing an extra copy failed", "folder", t, "err", err)
				continue
			}
			return nil, err
		}
	}

	for _, addr := range out.Redirects {
		if err := d.redirect(ctx, env, addr, body); err != nil {
			log.Error("sieve redirect failed", "to", addr, "err", err)
			continue
		}
		log.Info("redirected", "to", addr)
		res.Redirected = append(res.Redirected, addr)
	}
	if len(res.Stored) == 0 && len(out.Redirects) > 0 && len(res.Redirected) == 0 {
		// Every redirect failed: keep rather than lose (RFC 5228 §2.10.6).
		if err := d.store(ctx, cs, "INBOX", false, body, flags, res, log); err != nil {
			return nil, err
		}
	}
	for _, v := range out.Vacations {
		sent, err := d.vacation(ctx, env, m, v)
		if err != nil {
			log.Error("sieve vacation failed", "to", v.Sender, "err", err)
			continue
		}
		if sent {
			res.VacationTo = append(res.VacationTo, v.Sender)
		}
	}
	for _, dup := range out.Duplicates {
		// RFC 7352 §3.1: remembered once the delivery succeeded.
		if err := d.state.vacation.VacationRecord(ctx, env.User, duplicateHandle, dup.Key, d.now()); err != nil {
			log.Error("sieve duplicate: recording failed", "err", err)
		}
	}
	res.Discarded = len(res.Stored) == 0 && len(res.Redirected) == 0
	if res.Discarded {
		log.Info("discarded by sieve")
	}
	return res, nil
}

// checkFolders reports the first fileinto target that cannot be stored
// into: missing without :create (the spam folder is created anyway), or
// an invalid name.
func (d *Deliverer) checkFolders(cs *cachedStore, out *sieve.Outcome) error {
	spam := d.global().spamFolder()
	for _, mb := range out.Mailboxes {
		if strings.EqualFold(mb, "INBOX") {
			continue
		}
		name := mailstore.ResolveFolder(cs.store, mb, spam)
		_, err := cs.store.Folder(name)
		switch {
		case err == nil:
		case errors.Is(err, mailstore.ErrNoSuchFolder) && (containsFold(out.Create, mb) || strings.EqualFold(name, spam)):
		case errors.Is(err, mailstore.ErrNoSuchFolder):
			return fmt.Errorf("failed to store into mailbox '%s': Mailbox doesn't exist", mb)
		default:
			return fmt.Errorf("failed to store into mailbox '%s': %v", mb, err)
		}
	}
	return nil
}

func appendFolder(list []string, name string) []string {
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	for _, n := range list {
		if n == name {
			return list
		}
	}
	return append(list, name)
}

func containsFold(list []string, name string) bool {
	for _, n := range list {
		if n == name || (strings.EqualFold(n, "INBOX") && strings.EqualFold(name, "INBOX")) {
			return true
		}
	}
	return false
}

// storeFor returns the user's store, opened once and reused (its folder
// caches make repeated deliveries cheap). A changed quota reopens it.
func (d *Deliverer) storeFor(user string) (*cachedStore, error) {
	if d.MaildirFor == nil {
		return nil, Temporary(errors.New("delivery: no MaildirFor configured"))
	}
	root, err := d.MaildirFor(user)
	if err != nil {
		if errors.Is(err, ErrUnknownUser) {
			return nil, err
		}
		return nil, Temporary(wrapUser(user, "maildir", err))
	}
	var qb, qm int64
	if d.QuotaFor != nil {
		qb, qm = d.QuotaFor(user)
	}
	st := &d.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if cs := st.stores[user]; cs != nil && cs.root == root && cs.qb == qb && cs.qm == qm {
		return cs, nil
	}
	s, err := mailstore.Open(root, mailstore.Options{
		Logger:        st.log,
		Hostname:      d.Hostname,
		NoFsync:       d.NoFsync,
		QuotaBytes:    qb,
		QuotaMessages: qm,
		Clock:         d.Now,
		CreateRoot:    true,
	})
	if err != nil {
		return nil, Temporary(wrapUser(user, "open store", err))
	}
	cs := &cachedStore{root: root, qb: qb, qm: qm, store: s}
	st.stores[user] = cs
	return cs, nil
}

// store appends body to folder, creating (and subscribing) it when the
// script asked with :create or it is the spam folder. A missing folder
// otherwise falls back to INBOX (dovecot's behaviour without autocreate).
func (d *Deliverer) store(ctx context.Context, cs *cachedStore, folder string, create bool, body msgspool.Source, flags []string, res *Result, log *slog.Logger) error {
	cs.folderMu.Lock()
	if folder != "INBOX" {
		folder = mailstore.ResolveFolder(cs.store, folder, d.global().spamFolder())
		for _, c := range res.Stored {
			if c.Folder == folder {
				cs.folderMu.Unlock()
				return nil // "Junk" and "junk": one copy
			}
		}
	}
	f, err := cs.store.Folder(folder)
	if mailstore.IsSharedNamespaceName(folder) {
		// The shared namespace's names are other users' folders over
		// IMAP; a folder of one's own there could not be reached, so
		// fileinto refuses the name as IMAP CREATE does.
		f, err = nil, fmt.Errorf("%w: %q is in the shared namespace", mailstore.ErrInvalidFolderName, folder)
	}
	if errors.Is(err, mailstore.ErrNoSuchFolder) || errors.Is(err, mailstore.ErrInvalidFolderName) {
		if errors.Is(err, mailstore.ErrNoSuchFolder) && (create || strings.EqualFold(folder, d.global().spamFolder())) {
			f, err = d.createFolder(cs, folder)
		}
		if err != nil {
			log.Warn("fileinto: folder unusable, delivering to INBOX", "folder", folder, "err", err)
			folder = "INBOX"
			for _, c := range res.Stored {
				if c.Folder == "INBOX" {
					cs.folderMu.Unlock()
					return nil // INBOX has its copy already
				}
			}
			f, err = cs.store.Folder("INBOX")
		}
	}
	cs.folderMu.Unlock()
	if err != nil {
		return Temporary(fmt.Errorf("delivery: open folder %q of %s: %w", folder, cs.root, err))
	}
	uid, err := f.Append(ctx, msgspool.NewReader(body), flags, d.now())
	if err != nil {
		if errors.Is(err, mailstore.ErrOverQuota) {
			err = fmt.Errorf("delivery: %s: %w", cs.root, ErrOverQuota)
			if d.OverQuotaTemporary {
				return Temporary(err)
			}
			return err
		}
		return Temporary(fmt.Errorf("delivery: append to %q of %s: %w", folder, cs.root, err))
	}
	log.Debug("stored", "folder", folder, "uid", uid)
	res.Stored = append(res.Stored, StoredCopy{Folder: folder, UID: uid, Flags: flags})
	return nil
}

func (d *Deliverer) createFolder(cs *cachedStore, folder string) (*mailstore.Folder, error) {
	if err := cs.store.CreateFolder(folder); err != nil && !errors.Is(err, mailstore.ErrFolderExists) {
		return nil, err
	}
	if err := cs.store.Subscribe(folder); err != nil {
		return nil, err
	}
	return cs.store.Folder(folder)
}

// imapFlags canonicalises imap4flags output for the store: system flags
// in their usual case, \Recent dropped, keywords as given.
func imapFlags(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, f := range in {
		if strings.HasPrefix(f, `\`) {
			switch strings.ToLower(f) {
			case `\seen`:
				f = `\Seen`
			case `\answered`:
				f = `\Answered`
			case `\flagged`:
				f = `\Flagged`
			case `\deleted`:
				f = `\Deleted`
			case `\draft`:
				f = `\Draft`
			default:
				continue // \Recent and unknown system flags
			}
		}
		dup := false
		for _, o := range out {
			if strings.EqualFold(o, f) {
				dup = true
			}
		}
		if !dup && f != "" {
			out = append(out, f)
		}
	}
	return out
}
