// Package imap is mailmig's IMAP server over the Maildir++ store of
// package mailstore: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) with
// STARTTLS, LITERAL+ (RFC 7888), IDLE (RFC 2177), MOVE (RFC 6851),
// UIDPLUS (RFC 4315), NAMESPACE (RFC 2342), SPECIAL-USE (RFC 6154),
// LIST-STATUS (RFC 5819), APPENDLIMIT (RFC 7889), STATUS=SIZE (RFC 8438),
// UNSELECT (RFC 3691), ENABLE (RFC 5161), ID (RFC 2971), QUOTA (RFC 9208),
// ACL (RFC 4314), CONDSTORE and QRESYNC (RFC 7162), ESEARCH (RFC 4731),
// SEARCHRES (RFC 5182) and BINARY (RFC 3516).
//
// The protocol layer is mailmig's own (see docs/imap.md for why): a
// command parser with literals, a response writer, one goroutine per
// connection. It reuses go-imap/v2's types (imap.SeqSet, imap.Flag, ...)
// and its message helpers (imapserver.ExtractEnvelope,
// ExtractBodyStructure, ExtractBodySection).
//
// Implementation notes:
//   - A session's view of the selected folder is its list of UIDs
//     (sequence number = index+1); flags and sizes come from the store's
//     shared, immutable snapshot, so sessions of one process do not copy a
//     folder each.
//   - Changes reach a session as mailstore.Change events on a channel; they
//     are applied to the view, and announced, only between commands (and
//     during IDLE), never in the middle of one, so sequence numbers do not
//     shift under a command. EXPUNGE is not announced during FETCH, STORE
//     and SEARCH (RFC 9051 §7.5.1).
//   - Changes by other processes are found by one poller per watched folder
//     per process (Folder.Refresh every PollInterval), shared by all
//     sessions idling on it.
//   - Never write to a client while holding a lock of the server or store.
//   - Stores are opened once per user and shared by that user's sessions
//     (and by sessions reading that user's folders through ACL grants).
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"mailmig/mailstore"
	"mailmig/server/auth/gssapi"
	"mailmig/server/listen"
)

// Authenticator checks a password; it applies failure delays and rate
// limits itself. *auth.Authenticator implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, remoteIP, user, password string) error
}

// Options configure a Server. Auth and MaildirFor are required.
type Options struct {
	// Logger receives connection and error logs; nil means slog.Default().
	Logger *slog.Logger
	// Auth checks LOGIN and AUTHENTICATE PLAIN credentials.
	Auth Authenticator
	// MaildirFor returns a user's Maildir++ root.
	MaildirFor func(user string) (string, error)
	// QuotaFor returns a user's byte and message limits (0 = none); nil
	// means DefaultQuotaBytes and no message limit.
	QuotaFor func(user string) (bytes, messages int64)
	// Users lists the server's accounts, to find folders other users
	// shared (ACL); nil means no shared namespace.
	Users func() ([]string, error)
	// TLS is used for STARTTLS; nil means no STARTTLS.
	TLS *tls.Config
	// SpamFolder is the site's spam folder, announced \Junk ("junk" if
	// empty).
	SpamFolder string
	// AppendLimit is the largest message APPEND accepts (0 = 50 MB).
	AppendLimit int64
	// PollInterval is how often a folder someone IDLEs on is checked for
	// changes by other processes (0 = 500 ms); also how often a session
	// with NOTIFY looks at the folder list (notify_list.go).
	PollInterval time.Duration
	// NotifyMaxPending bounds the notifications a NOTIFY session may have
	// waiting (folders to report with STATUS plus folder list changes);
	// past it the session gets OK [NOTIFICATIONOVERFLOW] and NOTIFY NONE
	// (RFC 5465 §5.8). 0 = 1000.
	NotifyMaxPending int
	// IdleTimeout ends connections silent for this long (0 = 30 minutes,
	// the RFC 9051 minimum for an autologout timer).
	IdleTimeout time.Duration
	// Hub carries store changes; nil means mailstore.DefaultHub.
	Hub *mailstore.Hub
	// NoFsync is passed to the store (tests and benchmarks only).
	NoFsync bool
	// Hostname is put in the greeting and store file names.
	Hostname string
	// Limits bound what one connection may hold and how long it may take
	// (see limits.go); zero fields take the defaults.
	Limits ConnLimits
	// GSSAPI, if set, offers AUTHENTICATE GSSAPI (RFC 4752) for the
	// service principal imap/HOST; only where PLAIN is allowed unless
	// GSSAPIWithoutTLS.
	GSSAPI           *gssapi.Acceptor
	GSSAPIWithoutTLS bool
}

// DefaultQuotaBytes is the storage quota when Options.QuotaFor is nil.
const DefaultQuotaBytes = 1 << 30

// Listener options for Serve.
type ListenerOptions struct {
	// ImplicitTLS wraps accepted connections in TLS (port 993).
	ImplicitTLS bool
	// Trusted allows LOGIN and AUTHENTICATE without TLS.
	Trusted bool
	// NoStartTLS hides STARTTLS on this listener (tls = "none").
	NoStartTLS bool
}

// Server is an IMAP server. Create it with New.
type Server struct {
	opts Options
	log  *slog.Logger

	group listen.Group

	stores  storeCache
	pollers pollers
	headers *headerCache
	modseq  modseqs
	// grants caches, per user, the folders others shared with them.
	grantsMu sync.Mutex
	grants   map[string]grantsEntry
	// vsizes caches the CRLF sizes of big messages whose names carry no
	// W= (bigmsg.go), by folder dir + key.
	vsizes sync.Map
	// trim returns the hashing memory to the OS after a burst of logins
	// (see authDone).
	trimMu    sync.Mutex
	trimTimer *time.Timer
}

// authDone is called after each password check. argon2id allocates tens
// of MB per check; the Go heap keeps that memory after a burst of logins
// (1000 clients reconnecting after a restart) far longer than it is
// needed. Two seconds after the last check the memory is handed back.
func (s *Server) authDone() {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	if s.trimTimer == nil {
		s.trimTimer = time.AfterFunc(2*time.Second, debug.FreeOSMemory)
		return
	}
	s.trimTimer.Reset(2 * time.Second)
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("imap: server closed")

// New returns a server with opts.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SpamFolder == "" {
		opts.SpamFolder = "junk"
	}
	if opts.AppendLimit <= 0 {
		opts.AppendLimit = 50 << 20
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.NotifyMaxPending <= 0 {
		opts.NotifyMaxPending = 1000
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	opts.Limits = opts.Limits.withDefaults()
	if opts.Hub == nil {
		opts.Hub = mailstore.DefaultHub
	}
	if opts.Hostname == "" {
		opts.Hostname = "mailmig"
	}
	s := &Server{
		opts: opts,
		log:  opts.Logger,
	}
	s.stores.srv = s
	s.pollers.srv = s
	s.group.Logger = opts.Logger
	s.headers = newHeaderCache(8 << 20)
	s.modseq.init(opts.Logger)
	return s
}

// Serve accepts connections on ln until Shutdown or Close; it returns
// ErrServerClosed then.
func (s *Server) Serve(ln net.Listener, lo ListenerOptions) error {
	if lo.ImplicitTLS && s.opts.TLS == nil {
		ln.Close()
		return fmt.Errorf("imap: implicit TLS listener %s without TLS config", ln.Addr())
	}
	err := s.group.Serve(ln, func(nc net.Conn) listen.Conn {
		if lo.ImplicitTLS {
			nc = tls.Server(nc, s.opts.TLS)
		}
		c := newConn(s, nc, lo)
		return listen.Conn{Serve: c.serve, Shutdown: c.shutdown, Close: c.closeNow}
	})
	if errors.Is(err, listen.ErrClosed) {
		return ErrServerClosed
	}
	return fmt.Errorf("imap: %w", err)
}

// Shutdown stops accepting, asks every session to end after its current
// command (an APPEND in progress completes; IDLE ends with BYE) and waits
// for them until ctx is done, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.group.Shutdown(ctx)
	s.pollers.stopAll()
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.group.Close()
	s.pollers.stopAll()
	return nil
}

// storeCache shares one mailstore.Store per user between sessions. A
// store nobody uses stays open for storeLinger, so a client that logs in
// and out repeatedly (mbsync, webmail, LOGIN/LOGOUT cycles) finds the
// folders' cached state still there.
type storeCache struct {
	srv       *Server
	mu        sync.Mutex
	m         map[string]*cachedStore
	lastSweep time.Time
}

type cachedStore struct {
	st     *mailstore.Store
	refs   int
	unused time.Time // when refs dropped to 0
}

const storeLinger = time.Minute

// sweep closes stores unused for storeLinger; c.mu is held.
func (c *storeCache) sweep(now time.Time) {
	if now.Sub(c.lastSweep) < storeLinger/4 {
		return
	}
	c.lastSweep = now
	for user, cs := range c.m {
		if cs.refs == 0 && now.Sub(cs.unused) > storeLinger {
			delete(c.m, user)
			cs.st.Close()
		}
	}
}

// acquire returns the user's store; release it with release. create
// makes a missing Maildir (the user logging in); other users' trees are
// only looked at, never created, so the converter finds them untouched.
func (c *storeCache) acquire(user string, create bool) (*mailstore.Store, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(time.Now())
	if cs, ok := c.m[user]; ok {
		cs.refs++
		return cs.st, nil
	}
	root, err := c.srv.opts.MaildirFor(user)
	if err != nil {
		return nil, fmt.Errorf("maildir of %s: %w", user, err)
	}
	qb, qm := int64(DefaultQuotaBytes), int64(0)
	if c.srv.opts.QuotaFor != nil {
		qb, qm = c.srv.opts.QuotaFor(user)
	}
	st, err := mailstore.Open(root, mailstore.Options{
		Logger:        c.srv.log,
		Hostname:      c.srv.opts.Hostname,
		NoFsync:       c.srv.opts.NoFsync,
		QuotaBytes:    qb,
		QuotaMessages: qm,
		Hub:           c.srv.opts.Hub,
		CreateRoot:    create,
	})
	if err != nil {
		return nil, fmt.Errorf("open store of %s: %w", user, err)
	}
	if c.m == nil {
		c.m = map[string]*cachedStore{}
	}
	c.m[user] = &cachedStore{st: st, refs: 1}
	return st, nil
}

func (c *storeCache) release(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, ok := c.m[user]
	if !ok {
		return
	}
	cs.refs--
	if cs.refs <= 0 {
		cs.refs = 0
		cs.unused = time.Now()
	}
}

// pollers runs one Refresh loop per folder that has idling sessions, so
// changes by other processes (delivery, dovecot) reach them.
type pollers struct {
	srv *Server
	mu  sync.Mutex
	m   map[*mailstore.Folder]*poller
}

type poller struct {
	refs int
	stop chan struct{}
}

// watch starts (or joins) the poller of f; call the returned function to
// leave it.
func (p *pollers) watch(f *mailstore.Folder) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[*mailstore.Folder]*poller{}
	}
	pl, ok := p.m[f]
	if !ok {
		pl = &poller{stop: make(chan struct{})}
		p.m[f] = pl
		go p.run(f, pl.stop)
	}
	pl.refs++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			pl.refs--
			if pl.refs == 0 {
				close(pl.stop)
				delete(p.m, f)
			}
		})
	}
}

func (p *pollers) run(f *mailstore.Folder, stop chan struct{}) {
	t := time.NewTicker(p.srv.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := f.Refresh(ctx); err != nil {
				p.srv.log.Warn("imap: poll folder", "dir", f.Dir(), "err", err)
			}
			cancel()
		}
	}
}

func (p *pollers) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for f, pl := range p.m {
		close(pl.stop)
		delete(p.m, f)
	}
}
