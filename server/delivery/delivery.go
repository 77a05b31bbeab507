// Package delivery is mailmig's one local delivery path: a message for a
// local user goes through Sieve (RFC 5228, mailmig/server/sieve's
// interpreter), quota checks, and into the user's
// Maildir++ store (mailmig/mailstore). LMTP, submission to local users,
// `mailmig deliver` (the old MTA's pipe) and notify all call
// Deliverer.Deliver, and map its errors to replies with SMTPStatus and
// ExitCode.
//
// Actions carried out: keep, fileinto (:create, :copy, :flags), discard,
// stop, redirect (RFC 5228 §4.2, sent through the Sender with the original
// envelope sender), reject/ereject (RFC 5429: refused with the script's
// text), imap4flags (RFC 5232: flags stored on the delivered copies),
// editheader (RFC 5293: applied to stored and redirected copies), and
// vacation (RFC 5230, replies through the Sender with a null MAIL FROM,
// remembered per sender for :days in a VacationStore).
//
// Implementation notes:
//   - Mail is never lost to a script: a script that fails at run time
//     leaves the message in INBOX and the error in the log. A user's
//     script that does not compile is replaced by the global script (so
//     spam filtering stays on); a global script that does not compile
//     leaves messages in INBOX.
//   - Every stored copy is fsynced (by mailstore) before Deliver returns,
//     unless NoFsync is set (tests and benchmarks only).
//   - With GlobalBefore, the global script runs first; if it cancels the
//     implicit keep (fileinto, discard, redirect, reject) its result is
//     final and the user's script does not run, so a personal script can
//     not drop the site's spam filter. Otherwise the user's script runs and
//     its actions are added to the global one's.
//   - Deliver adds no trace headers: the protocol front end prepends
//     Return-Path/Received if it wants them (LMTP does).
package delivery

import (
	"context"
	"io"
	"log/slog"
	"time"

	"mailmig/server/msgspool"
	"mailmig/server/sieve"
)

// Envelope is one recipient's view of the SMTP envelope.
type Envelope struct {
	// From is the MAIL FROM address; "" is the null sender.
	From string
	// To is the full recipient address as given in RCPT TO.
	To string
	// User is the local account the message is for.
	User string
	// Detail is the subaddress after '+' ("" for none), RFC 5233.
	Detail string
}

// Sender hands a message to the outgoing queue (server/outbound
// implements it). from "" means the null sender (vacation replies).
type Sender interface {
	Send(ctx context.Context, from string, to []string, msg io.Reader) error
}

// VacationStore remembers to whom a vacation reply went (RFC 5230 §4.2).
// state.DB provides the persistent one; MemoryVacation is for tests.
type VacationStore interface {
	// VacationSeen reports whether user answered sender under handle at or
	// after since.
	VacationSeen(ctx context.Context, user, handle, sender string, since time.Time) (bool, error)
	// VacationRecord records that user answered sender under handle at at.
	VacationRecord(ctx context.Context, user, handle, sender string, at time.Time) error
}

// VacationClaimer is a VacationStore that looks up and records a reply in
// one step, so that deliveries in different processes (two `mailmig
// deliver` runs for one user, as Postfix starts them in parallel, or one
// beside `mailmig serve`) answer a sender once; the lock a Deliverer
// takes covers only its own process.
type VacationClaimer interface {
	// VacationClaim records that user answers sender under handle at at,
	// unless a reply at or after since is recorded; it reports whether it
	// recorded.
	VacationClaim(ctx context.Context, user, handle, sender string, since, at time.Time) (bool, error)
	// VacationUnclaim forgets the claim made at at (its reply could not
	// be sent); a claim replaced only a record older than since, which
	// counts as none.
	VacationUnclaim(ctx context.Context, user, handle, sender string, at time.Time) error
}

// Deliverer delivers messages to local users. Set the fields before the
// first Deliver and don't change them afterwards (SetGlobal changes the
// global Sieve settings at run time); Deliver is safe for concurrent use.
type Deliverer struct {
	// MaildirFor returns the user's Maildir root (required).
	MaildirFor func(user string) (string, error)
	// ScriptsFor returns the user's Sieve script storage; nil, or a nil
	// Storage, means users have no personal scripts.
	ScriptsFor func(user string) (*sieve.Storage, error)
	// GlobalScript is the site's script: its text, or the path of a file
	// holding it (a single line starting with '/'). "" means
	// DefaultGlobalScript(SpamHeader, SpamThreshold, SpamFolder); use
	// "keep;" for none.
	GlobalScript string
	// SpamHeader and SpamThreshold make the default global script: a
	// message whose SpamHeader contains SpamThreshold is spam ("" means
	// "X-Spam-Level" and "*****").
	SpamHeader, SpamThreshold string
	// GlobalBefore runs the global script before the user's active script
	// (dovecot's sieve_before); otherwise the user's script replaces it.
	GlobalBefore bool
	// SpamFolder is the spam folder name ("" means "junk"): created on
	// first use and subscribed. fileinto "Junk"/"Spam" (any case) reaches
	// it (mailstore.ResolveFolder).
	SpamFolder string
	// GlobalDir holds the site's global scripts, GLOBAL_DIR/NAME.sieve,
	// reached with `include :global "NAME"` (RFC 6609; pigeonhole's
	// sieve_global). "spam" always exists: the file when there is one,
	// else the default spam rule (DefaultGlobalScript).
	GlobalDir string
	// Spamtest and Virustest configure RFC 5235's tests (pigeonhole's
	// sieve_spamtest_* settings); nil Spamtest means X-Spam-Level, one
	// star per point, 5 points certainly spam.
	Spamtest, Virustest *sieve.TestConfig
	// QuotaFor returns the user's limits (0 = none); nil means no quota.
	QuotaFor func(user string) (bytes, msgs int64)
	// OverQuotaTemporary makes over-quota a temporary failure (452 4.2.2,
	// EX_TEMPFAIL) instead of a permanent one (552 5.2.2).
	OverQuotaTemporary bool
	// MaxMessageBytes refuses larger messages with ErrTooBig (0 = no limit).
	MaxMessageBytes int64
	// Sender sends redirects and vacation replies; nil makes those actions
	// fail (logged, message kept).
	Sender Sender
	// Vacation remembers vacation replies; nil means MemoryVacation.
	Vacation VacationStore
	// VacationDays is the :days used when a script gives none (0 = 7).
	VacationDays int
	// UserExists reports whether user is a local account; nil means every
	// user MaildirFor accepts exists.
	UserExists func(user string) (bool, error)
	// Intercept is called before anything else (control-address replies of
	// the migration); handled=true ends the delivery successfully.
	Intercept func(ctx context.Context, env Envelope, msg msgspool.Source) (handled bool, err error)
	// Logger receives delivery logs; nil means slog.Default().
	Logger *slog.Logger
	// Hostname names this host in generated Message-IDs and Maildir file
	// names; "" means os.Hostname().
	Hostname string
	// NoFsync turns off fsync in the store (tests and benchmarks only).
	NoFsync bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Aliases expands alias names to accounts and external addresses
	// (server/aliases.Table); nil means no aliases. See aliases.go.
	Aliases AliasExpander

	state deliverState
}

// Result says what happened to a delivered message.
type Result struct {
	// Stored lists the copies written, in order.
	Stored []StoredCopy
	// Discarded is true when the script discarded the message.
	Discarded bool
	// Redirected lists the addresses the message was sent on to.
	Redirected []string
	// VacationTo lists the senders a vacation reply went to.
	VacationTo []string
	// Intercepted is true when Intercept handled the message.
	Intercepted bool
	// ScriptErr is the Sieve error that made the message fall back to
	// INBOX (nil when the scripts ran).
	ScriptErr error
}

// SpamScriptName is the global script the site's spam rule is reachable
// as: `include :global "spam";`.
const SpamScriptName = sieve.GlobalSpam

// StoredCopy is one message written to a folder.
type StoredCopy struct {
	Folder string
	UID    uint32
	Flags  []string
}
