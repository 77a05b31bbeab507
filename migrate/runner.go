// Package migrate is the queue runner: it moves each queued user through
// queued → dual → copying → confirm → cutover → done (or needs-attention),
// and routes the old MTA's deliveries (mailmig deliver) to the old mbox,
// the new store, or both, by the user's state.
//
// Implementation notes:
//   - Every step is idempotent and the state only moves after a step's
//     work is durable, so a runner killed at any point (kill -9) redoes at
//     most the step it was in: Prepare and Copy are idempotent (the
//     converter recognises what it already wrote), mails are recorded as
//     events and not sent twice, and transitions are checked against the
//     user's current state (state.ErrStateChanged means someone else moved
//     the user: the step is abandoned).
//   - A worker holds a lease on the user it works on and renews it while
//     working; a crashed worker's lease expires (or is released at once
//     when its process on this host is gone) and another worker resumes.
//   - Dual delivery and the runner meet at the old INBOX's spool lock:
//     deliver reads the user's state, appends to the old mbox and delivers
//     to the new store all under that lock, and the converter reads the
//     old INBOX under it, so every dual-delivered message is seen on both
//     sides or on neither. The runner moves a user from cutover to done
//     under the same lock, so nothing is appended to the old mbox after
//     the user is done.
//   - Time comes from Runner.Now (and state.DB.Now), so tests and the demo
//     can move the clock past the dual window instead of waiting 48 hours.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailmig/migrate/paths"
	"mailmig/migrate/spool"
	"mailmig/notify"
	"mailmig/state"
)

// ErrOverLimit is wrapped by a Copier when the user's folders exceed the
// copy limit: the user stops in needs-attention with the error's text.
var ErrOverLimit = errors.New("migrate: folders over the copy limit")

// ErrUnreadable is wrapped by a Copier when old files or directories that
// may hold mail cannot be read (permissions, a FIFO as INBOX): the user
// goes to needs-attention at once with the paths and reasons, never to
// confirm with folders silently missing.
var ErrUnreadable = errors.New("migrate: old mail cannot be read")

// Copier copies one user's old mail into the new store.
type Copier interface {
	// Prepare readies the new store before dual delivery starts (the new
	// INBOX takes the old UIDVALIDITY and a UIDNEXT above the old UIDs).
	// It must be idempotent.
	Prepare(ctx context.Context, e *state.Entry, p *paths.User) error
	// Copy copies the INBOX (and the folders when e.CopyFolders), or with
	// incremental only what reached the old side since, without touching
	// what the new store holds. It must be idempotent and recognise
	// messages that dual delivery already put into the new store.
	Copy(ctx context.Context, e *state.Entry, p *paths.User, incremental bool, progress func(bytes, messages int64)) (*Report, error)
}

// Reporter shows progress; nil methods are fine to leave out by using
// LogReporter or NopReporter.
type Reporter interface {
	// Begin starts showing user's copy of about total bytes.
	Begin(user string, total int64)
	// Update reports bytes and messages copied so far for user.
	Update(user string, bytes, messages int64)
	// End reports the state user reached in this step.
	End(user string, st state.State, err error)
}

// Runner works the queue.
type Runner struct {
	DB     *state.DB
	Copier Copier
	// Paths resolves a user's old and new locations.
	Paths func(user string) (*paths.User, error)
	// Notifier sends the confirmation, forced-move and final mails.
	Notifier *Notifier
	// DualWindow is how long after dual began the cutover happens without
	// a reply (config migration.dual_window).
	DualWindow time.Duration
	// LeaseTTL is how long a lease lasts without renewal (2 minutes if 0).
	LeaseTTL time.Duration
	// MaxAttempts moves a user to needs-attention after this many failed
	// attempts of a step (3 if 0).
	MaxAttempts int
	// Now is the clock (time.Now if nil); set DB.Now to the same clock.
	Now func() time.Time
	// Spool tunes the old INBOX's locks.
	Spool spool.Options
	// Progress receives progress (nil: none).
	Progress Reporter
	// Logger (slog.Default if nil).
	Logger *slog.Logger
	// Worker names this process's workers ("host/pid" if empty).
	Worker string
	// LoginCheck, if set, is asked before dual delivery begins whether
	// the user can log in to the new server (server/auth password
	// sources); a user who cannot stops in needs-attention with "no
	// login: " and the reason, before anything is delivered twice.
	LoginCheck func(ctx context.Context, user string) (canLogin bool, reason string, err error)
	// QuotaCheck, if set, is asked after the copy whether the user's new
	// store is over their quota (issue 9 item 7); over says by how much.
	// With OverQuotaWarn the user goes on to confirm and an "over-quota"
	// event records it; otherwise the user stops in needs-attention.
	QuotaCheck    func(ctx context.Context, user string) (over bool, detail string, err error)
	OverQuotaWarn bool
	// Filters converts the user's old filters during copying (nil: none).
	Filters FilterInstaller
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Runner) leaseTTL() time.Duration {
	if r.LeaseTTL > 0 {
		return r.LeaseTTL
	}
	return 2 * time.Minute
}

func (r *Runner) maxAttempts() int {
	if r.MaxAttempts > 0 {
		return r.MaxAttempts
	}
	return 3
}

func (r *Runner) workerBase() string {
	if r.Worker != "" {
		return r.Worker
	}
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid())
}

// Outcome of one step.
type stepResult int

const (
	stepMoved   stepResult = iota // state advanced: more work may follow at once
	stepWaiting                   // nothing to do until a reply or the clock
	stepFailed                    // error recorded; retry later
	stepIdle                      // user not workable (done, needs-attention, leased)
)

// Advance works on user until it has to wait (for a reply or the clock),
// is done, or fails. It takes and releases the lease itself.
func (r *Runner) Advance(ctx context.Context, user, worker string) (state.State, error) {
	if err := r.DB.Lease(ctx, user, worker, r.leaseTTL()); err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // renew the lease while working
		defer wg.Done()
		t := time.NewTicker(r.leaseTTL() / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := r.DB.Renew(context.WithoutCancel(ctx), user, worker, r.leaseTTL()); err != nil {
					cancel(fmt.Errorf("migrate: lease on %s lost: %w", user, err))
					return
				}
			}
		}
	}()
	defer func() {
		cancel(nil)
		wg.Wait()
		if err := r.DB.Release(context.WithoutCancel(ctx), user, worker); err != nil {
			r.log().Warn("release lease", "user", user, "err", err)
		}
	}()
	for i := 0; i < 10; i++ {
		e, err := r.DB.Get(ctx, user)
		if err != nil {
			return "", err
		}
		res, err := r.step(ctx, e)
		if err != nil || res != stepMoved {
			e2, gerr := r.DB.Get(context.WithoutCancel(ctx), user)
			if gerr == nil {
				return e2.State, err
			}
			return e.State, err
		}
	}
	e, err := r.DB.Get(ctx, user)
	if err != nil {
		return "", err
	}
	return e.State, nil
}

// step does the work of e's current state once.
func (r *Runner) step(ctx context.Context, e *state.Entry) (stepResult, error) {
	log := r.log().With("user", e.User, "state", e.State)
	switch e.State {
	case state.Queued:
		p, err := r.Paths(e.User)
		if err != nil {
			return r.attention(ctx, e, fmt.Sprintf("cannot resolve paths: %v", err))
		}
		if r.LoginCheck != nil {
			ok, reason, err := r.LoginCheck(ctx, e.User)
			if err != nil {
				return r.fail(ctx, e, "login check", err)
			}
			if !ok {
				return r.attention(ctx, e, "no login: "+reason)
			}
		}
		if err := r.Copier.Prepare(ctx, e, p); err != nil {
			return r.fail(ctx, e, "prepare", err)
		}
		if err := r.transition(ctx, e, state.Dual, "new store prepared; delivery goes to both sides"); err != nil {
			return stepFailed, err
		}
		log.Info("dual delivery begins")
		return stepMoved, nil
	case state.Dual:
		if err := r.transition(ctx, e, state.Copying, ""); err != nil {
			return stepFailed, err
		}
		return stepMoved, nil
	case state.Copying:
		return r.copyStep(ctx, e, log)
	case state.Confirm:
		return r.confirmStep(ctx, e, log)
	case state.Cutover:
		return r.cutoverStep(ctx, e, log)
	}
	return stepIdle, nil
}

func (r *Runner) transition(ctx context.Context, e *state.Entry, to state.State, reason string) error {
	err := r.DB.Transition(ctx, e.User, e.State, to, r.workerBase(), reason)
	if err != nil {
		return fmt.Errorf("migrate: %s %s → %s: %w", e.User, e.State, to, err)
	}
	return nil
}

// fail records a step's error; after MaxAttempts failures of the same
// step (since the user entered its state) the user stops in
// needs-attention.
func (r *Runner) fail(ctx context.Context, e *state.Entry, what string, err error) (stepResult, error) {
	if ctx.Err() != nil {
		return stepFailed, fmt.Errorf("migrate: %s %s: %w", what, e.User, context.Cause(ctx))
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	if errors.Is(err, ErrUnreadable) || errors.Is(err, fs.ErrPermission) {
		// Retrying does not change permissions: say so now.
		return r.attention(ctx, e, msg)
	}
	n, cerr := r.failuresInState(ctx, e)
	if cerr != nil {
		return stepFailed, cerr
	}
	r.log().Error("step failed", "user", e.User, "state", e.State, "err", err, "attempt", n+1)
	if n+1 >= r.maxAttempts() {
		return r.attention(ctx, e, msg)
	}
	if lerr := r.DB.Log(ctx, e.User, eventStepFailed, r.workerBase(), msg); lerr != nil {
		return stepFailed, lerr
	}
	if serr := r.DB.SetError(ctx, e.User, msg); serr != nil {
		return stepFailed, serr
	}
	return stepFailed, fmt.Errorf("migrate: %s %s: %w", what, e.User, err)
}

// eventStepFailed is logged for each failed attempt of a step.
const eventStepFailed = "step-failed"

// failuresInState counts the failed attempts since e entered its state.
func (r *Runner) failuresInState(ctx context.Context, e *state.Entry) (int, error) {
	evs, err := r.DB.Events(ctx, e.User)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		if ev.Kind == "transition" {
			break
		}
		if ev.Kind == eventStepFailed {
			n++
		}
	}
	return n, nil
}

// Retry moves a user out of needs-attention, back to the state it
// stopped in, so the next pass tries that step again.
func (r *Runner) Retry(ctx context.Context, user, actor string) (state.State, error) {
	e, err := r.DB.Get(ctx, user)
	if err != nil {
		return "", err
	}
	if e.State != state.NeedsAttention {
		return e.State, fmt.Errorf("migrate: %s is %s, not needs-attention", user, e.State)
	}
	to := e.AttentionFrom
	if to == "" || !state.CanTransition(state.NeedsAttention, to) {
		to = state.Queued
	}
	if err := r.DB.Transition(ctx, user, state.NeedsAttention, to, actor, "retry"); err != nil {
		return "", err
	}
	return to, nil
}

func (r *Runner) attention(ctx context.Context, e *state.Entry, reason string) (stepResult, error) {
	if err := r.transition(ctx, e, state.NeedsAttention, reason); err != nil {
		return stepFailed, err
	}
	r.log().Warn("user needs attention", "user", e.User, "from", e.State, "reason", reason)
	if r.Progress != nil {
		r.Progress.End(e.User, state.NeedsAttention, errors.New(reason))
	}
	return stepIdle, nil
}

func (r *Runner) copyStep(ctx context.Context, e *state.Entry, log *slog.Logger) (stepResult, error) {
	p, err := r.Paths(e.User)
	if err != nil {
		return r.attention(ctx, e, fmt.Sprintf("cannot resolve paths: %v", err))
	}
	start := time.Now()
	if r.Progress != nil {
		r.Progress.Begin(e.User, SourceBytes(p, e.CopyFolders))
	}
	var saved time.Time
	rep, err := r.Copier.Copy(ctx, e, p, false, func(b, m int64) {
		if r.Progress != nil {
			r.Progress.Update(e.User, b, m)
		}
		// `mailmig status` shows the copy under way (at most once a second).
		if time.Since(saved) >= time.Second {
			saved = time.Now()
			if err := r.DB.CopyProgress(ctx, e.User, b, m); err != nil {
				log.Warn("recording copy progress", "err", err)
			}
		}
	})
	if errors.Is(err, ErrOverLimit) {
		return r.attention(ctx, e, err.Error())
	}
	if err != nil {
		if r.Progress != nil {
			r.Progress.End(e.User, e.State, err)
		}
		return r.fail(ctx, e, "copy", err)
	}
	rep.Seconds = time.Since(start).Seconds()
	if res, err := r.installFilters(ctx, e, p, rep); err != nil {
		return res, err
	}
	js, err := rep.JSON()
	if err != nil {
		return stepFailed, err
	}
	if err := r.DB.Progress(ctx, e.User, rep.Bytes, rep.Messages, int64(len(rep.Folders)), js); err != nil {
		return stepFailed, err
	}
	for _, s := range rep.Skipped {
		if err := r.DB.Log(ctx, e.User, "not-copied", r.workerBase(), s); err != nil {
			return stepFailed, err
		}
	}
	if r.QuotaCheck != nil {
		over, detail, err := r.QuotaCheck(ctx, e.User)
		if err != nil {
			return r.fail(ctx, e, "quota check", err)
		}
		if over && !r.OverQuotaWarn {
			return r.attention(ctx, e, "over quota after the copy: "+detail)
		}
		if over {
			log.Warn("over quota after the copy", "detail", detail)
			if err := r.DB.Log(ctx, e.User, "over-quota", r.workerBase(), detail); err != nil {
				return stepFailed, err
			}
			// The confirmation says so (issue 9 item 7).
			rep.OverQuota = detail
			js, err := rep.JSON()
			if err != nil {
				return stepFailed, err
			}
			if err := r.DB.Progress(ctx, e.User, rep.Bytes, rep.Messages, int64(len(rep.Folders)), js); err != nil {
				return stepFailed, err
			}
		}
	}
	if err := r.transition(ctx, e, state.Confirm, fmt.Sprintf("copied %d messages, %d bytes, %d folders", rep.Messages, rep.Bytes, len(rep.Folders))); err != nil {
		return stepFailed, err
	}
	if r.Progress != nil {
		r.Progress.End(e.User, state.Confirm, nil)
	}
	log.Info("copied", "messages", rep.Messages, "bytes", rep.Bytes, "folders", len(rep.Folders),
		"dual_duplicates", rep.Duplicates, "renamed", len(rep.Renamed), "seconds", rep.Seconds)
	return stepMoved, nil
}

// CutoverAt is when e's dual window ends.
func (r *Runner) CutoverAt(e *state.Entry) time.Time {
	began := e.Steps[state.Dual]
	if began.IsZero() {
		began = e.StateSince
	}
	return began.Add(r.DualWindow)
}

func (r *Runner) confirmStep(ctx context.Context, e *state.Entry, log *slog.Logger) (stepResult, error) {
	kind := mailConfirm
	if e.Forced() {
		kind = mailForced
	}
	if r.Notifier != nil {
		if err := r.Notifier.SendOnce(ctx, e, kind, r.CutoverAt(e)); err != nil {
			return r.fail(ctx, e, "send "+string(kind)+" mail", err)
		}
	}
	var reason string
	switch {
	case e.StopRequested:
		reason = "stop requested: " + e.StopReason
	case !r.now().Before(r.CutoverAt(e)):
		reason = fmt.Sprintf("dual window of %s over", r.DualWindow)
	default:
		return stepWaiting, nil
	}
	if err := r.transition(ctx, e, state.Cutover, reason); err != nil {
		return stepFailed, err
	}
	log.Info("cutover begins", "reason", reason)
	return stepMoved, nil
}

func (r *Runner) cutoverStep(ctx context.Context, e *state.Entry, log *slog.Logger) (stepResult, error) {
	p, err := r.Paths(e.User)
	if err != nil {
		return r.attention(ctx, e, fmt.Sprintf("cannot resolve paths: %v", err))
	}
	rep, err := r.Copier.Copy(ctx, e, p, true, nil)
	if err != nil && !errors.Is(err, ErrOverLimit) {
		return r.fail(ctx, e, "final incremental copy", err)
	}
	carried := int64(0)
	var newFolders []notify.Folder
	if rep != nil {
		carried = rep.Messages
		// Folders the first copy did not have are named as such, not
		// counted as mail that arrived late (issue 9 item 8).
		if first, err := ParseReport(e.Report); err == nil {
			had := map[string]bool{}
			for _, f := range first.Folders {
				had[f.New] = true
			}
			for _, f := range rep.Folders {
				if !had[f.New] && f.Messages > 0 {
					newFolders = append(newFolders, notify.Folder{Name: f.New, Messages: f.Messages, Bytes: f.Bytes})
					carried -= f.Messages
				}
			}
		}
		if err := r.DB.Log(ctx, e.User, "carried-over", r.workerBase(), fmt.Sprintf("%d messages, %d bytes after the copy", rep.Messages, rep.Bytes)); err != nil {
			return stepFailed, err
		}
		// status's figures include this pass (issue 9 item 8).
		if err := r.DB.AddCarried(ctx, e.User, rep.Bytes, rep.Messages, int64(len(newFolders))); err != nil {
			return stepFailed, err
		}
	}
	if r.Notifier != nil {
		if err := r.Notifier.SendFinal(ctx, e, carried, newFolders...); err != nil {
			return r.fail(ctx, e, "send final mail", err)
		}
	}
	// Move to done under the old INBOX's lock: a deliver that saw the
	// user in cutover has finished its old-side append, and none that
	// follows will append (it sees done).
	l, err := spool.Lock(ctx, p.Inbox, r.Spool)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r.fail(ctx, e, "lock old INBOX for cutover", err)
	}
	terr := r.transition(ctx, e, state.Done, fmt.Sprintf("old delivery stopped; %d messages carried over", carried))
	if l != nil {
		l.Unlock()
	}
	if terr != nil {
		return stepFailed, terr
	}
	log.Info("done", "carried_over", carried)
	if r.Progress != nil {
		r.Progress.End(e.User, state.Done, nil)
	}
	return stepIdle, nil
}

// SourceBytes estimates what a copy reads: the INBOX's size plus, with
// folders, every file below the folders directory.
func SourceBytes(p *paths.User, folders bool) int64 {
	var n int64
	if fi, err := os.Stat(p.Inbox); err == nil {
		n += fi.Size()
	}
	if folders {
		walkSize(p.Folders, &n, 0)
	}
	return n
}

func walkSize(dir string, n *int64, depth int) {
	if depth > 32 {
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, d := range ents {
		if d.IsDir() {
			walkSize(dir+"/"+d.Name(), n, depth+1)
			continue
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			*n += fi.Size()
		}
	}
}

// ReleaseDead releases leases held by workers of this host whose process
// is gone (a runner killed with -9), so the next run resumes at once
// instead of waiting for the lease to expire.
func (r *Runner) ReleaseDead(ctx context.Context) error {
	host, _ := os.Hostname()
	list, err := r.DB.List(ctx)
	if err != nil {
		return err
	}
	for _, e := range list {
		if e.LeaseOwner == "" || !e.LeaseUntil.After(r.now()) {
			continue
		}
		parts := strings.Split(e.LeaseOwner, "/")
		if len(parts) < 2 || parts[0] != host {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := r.DB.Release(ctx, e.User, e.LeaseOwner); err != nil {
			return err
		}
		r.log().Info("released the lease of a dead worker", "user", e.User, "worker", e.LeaseOwner)
		r.DB.Log(ctx, e.User, "lease-released", r.workerBase(), "worker "+e.LeaseOwner+" is gone")
	}
	return nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
