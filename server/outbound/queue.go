// Package outbound is mailmig's persistent queue of outgoing mail.
//
// Everything mailmig sends to other servers — mail submitted for remote
// recipients, Sieve redirects and vacation replies — goes through a Queue:
// Send writes the message and its envelope to a spool directory (temporary
// file, fsync, rename) and returns only once it is durable, so accepted
// mail is never lost. A runner (Queue.Run, started by `mailmig serve`)
// relays queued mail to the configured smarthost (RFC 5321, with STARTTLS
// per RFC 3207 and AUTH per RFC 4954), retrying temporary failures on a
// schedule. A permanent refusal (5xx) bounces at once; a message still
// undelivered when the retry window closes bounces then. Bounces are
// delivery status notifications (RFC 3464, multipart/report per RFC 6522)
// naming the server that refused and its reply; they are sent with a null
// reverse-path, and a bounce that cannot be delivered is dropped (logged),
// never bounced again.
//
// Implementation notes:
//   - The .json file of an entry is the commit point; it is rewritten
//     through tmp+rename after every attempt, before the outcome is acted
//     on, so a crash can at worst cause one duplicate delivery, never a loss.
//   - Recipients for which Local reports true are delivered through Local
//     (this is how bounces reach a local sender's INBOX); the rest go to the
//     smarthost.
//   - Only one runner may work a spool directory at a time; short-lived
//     processes (`mailmig deliver`) only Send.
package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"mailmig/server/msgspool"
)

// DefaultRetry is the retry schedule used when Queue.Retry is empty: the
// delay before the 2nd, 3rd, ... attempt; the last one repeats.
var DefaultRetry = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour,
}

// DefaultWindow is how long delivery is retried before the message bounces.
const DefaultWindow = 5 * 24 * time.Hour

// LocalDelivery delivers to addresses of this server.
type LocalDelivery interface {
	// IsLocal reports whether addr is delivered by this server.
	IsLocal(ctx context.Context, addr string) bool
	// DeliverLocal delivers msg to the local address to. An error that is a
	// *Error with a 5xx code is permanent; anything else is retried.
	DeliverLocal(ctx context.Context, from, to string, msg msgspool.Source) error
}

// Queue is a spool directory of outgoing mail and its delivery runner.
// Fields must not change once Send or Run has been called.
type Queue struct {
	// Dir is the spool directory; it is created if missing.
	Dir string
	// Hostname names this server in Received:, Message-ID, DSNs and EHLO.
	Hostname string
	// Relay is the smarthost all non-local mail is handed to; change it
	// with SetRelay once the queue is in use.
	Relay Smarthost
	// Local delivers local recipients (bounces to local senders). If nil,
	// every recipient goes to the smarthost.
	Local LocalDelivery
	// Retry is the delay schedule between attempts (DefaultRetry if empty).
	Retry []time.Duration
	// Window is how long a message is retried before it bounces
	// (DefaultWindow if zero).
	Window time.Duration
	// Concurrency is how many entries are attempted at once (4 if zero).
	Concurrency int
	// Poll is how often Run rescans the spool for mail queued by other
	// processes (30s if zero).
	Poll time.Duration
	// Log receives one line per attempt and bounce (slog.Default if nil).
	Log *slog.Logger
	// Now is the clock (time.Now if nil); for tests.
	Now func() time.Time

	relayMu  sync.Mutex
	schedMu  sync.Mutex
	sched    map[string]schedEntry
	initOnce sync.Once
	initErr  error
	kick     chan struct{}
}

func (q *Queue) init() error {
	q.initOnce.Do(func() {
		q.kick = make(chan struct{}, 1)
		if q.Dir == "" {
			q.initErr = errors.New("outbound: no spool directory configured")
			return
		}
		q.initErr = q.ensureDirs()
	})
	return q.initErr
}

func (q *Queue) log() *slog.Logger {
	if q.Log != nil {
		return q.Log
	}
	return slog.Default()
}

func (q *Queue) now() time.Time {
	if q.Now != nil {
		return q.Now()
	}
	return time.Now()
}

func (q *Queue) window() time.Duration {
	if q.Window > 0 {
		return q.Window
	}
	return DefaultWindow
}

// retryDelay returns the wait after the given number of failed attempts.
func (q *Queue) retryDelay(attempts int) time.Duration {
	r := q.Retry
	if len(r) == 0 {
		r = DefaultRetry
	}
	i := attempts - 1
	if i < 0 {
		i = 0
	}
	if i >= len(r) {
		i = len(r) - 1
	}
	return r[i]
}

// Send queues msg for the recipients in to with reverse-path from ("" for
// a bounce). It returns once the message is durably on disk; delivery
// happens later in Run. It implements delivery.Sender.
func (q *Queue) Send(ctx context.Context, from string, to []string, msg io.Reader) error {
	_, err := q.enqueue(ctx, from, to, msg)
	return err
}

// Enqueue is Send returning the queue id (for logs and tests).
func (q *Queue) Enqueue(ctx context.Context, from string, to []string, msg io.Reader) (string, error) {
	return q.enqueue(ctx, from, to, msg)
}

func (q *Queue) enqueue(ctx context.Context, from string, to []string, msg io.Reader) (string, error) {
	if err := q.init(); err != nil {
		return "", err
	}
	if len(to) == 0 {
		return "", errors.New("outbound: no recipients")
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	id := newID()
	now := q.now()
	it := &item{ID: id, From: from, Pending: append([]string(nil), to...), Created: now, NextAttempt: now}
	n, err := q.commitNew(it, msg)
	if err != nil {
		return "", fmt.Errorf("outbound: spool message from <%s>: %w", from, err)
	}
	q.log().Info("outbound: queued", "id", id, "from", from, "rcpts", len(to), "bytes", n)
	q.Kick()
	return id, nil
}

// SetRelay replaces the smarthost settings (configuration reload); the
// next attempt uses them.
func (q *Queue) SetRelay(r Smarthost) {
	q.relayMu.Lock()
	q.Relay = r
	q.relayMu.Unlock()
	q.Kick()
}

func (q *Queue) relay() Smarthost {
	q.relayMu.Lock()
	defer q.relayMu.Unlock()
	return q.Relay
}

// Kick wakes the runner to look at the spool now.
func (q *Queue) Kick() {
	if q.init() != nil {
		return
	}
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Len returns the number of queued entries.
func (q *Queue) Len() (int, error) {
	if err := q.init(); err != nil {
		return 0, err
	}
	ids, _, err := q.listIDs()
	return len(ids), err
}

// Run delivers queued mail until ctx is done. It returns ctx's error, or
// an error if the spool directory cannot be used at all.
func (q *Queue) Run(ctx context.Context) error {
	if err := q.init(); err != nil {
		return err
	}
	poll := q.Poll
	if poll <= 0 {
		poll = 30 * time.Second
	}
	for {
		next, err := q.RunOnce(ctx)
		if err != nil {
			q.log().Error("outbound: scan spool", "dir", q.Dir, "err", err)
		}
		wait := poll
		if !next.IsZero() {
			if d := next.Sub(q.now()); d < wait {
				wait = d
			}
		}
		if wait < 10*time.Millisecond {
			wait = 10 * time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-q.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// RunOnce makes one pass over the spool, attempting every entry that is
// due, and returns when the earliest remaining entry is next due (zero if
// the queue is empty).
func (q *Queue) RunOnce(ctx context.Context) (next time.Time, err error) {
	if err := q.init(); err != nil {
		return time.Time{}, err
	}
	ids, orphans, err := q.listIDs()
	if err != nil {
		return time.Time{}, err
	}
	for _, id := range orphans {
		q.cleanOrphan(id)
	}
	workers := q.Concurrency
	if workers <= 0 {
		workers = 4
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, workers)
	)
	note := func(t time.Time) {
		mu.Lock()
		if next.IsZero() || t.Before(next) {
			next = t
		}
		mu.Unlock()
	}
	now := q.now()
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		seen[id] = true
		// The schedule in memory spares reading every envelope on
		// every pass (Send kicks a pass for each new message).
		if e, ok := q.schedGet(id); ok {
			if e.bad {
				continue
			}
			if e.next.After(now) {
				note(e.next)
				continue
			}
		}
		it, err := q.loadMeta(id)
		if err != nil {
			q.log().Error("outbound: skip unreadable entry", "id", id, "err", err)
			q.schedSet(id, schedEntry{bad: true})
			continue
		}
		if it.NextAttempt.After(now) {
			q.schedSet(id, schedEntry{next: it.NextAttempt})
			note(it.NextAttempt)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := q.attempt(ctx, it); err != nil {
				q.log().Error("outbound: attempt", "id", it.ID, "err", err)
			}
			if len(it.Pending) > 0 {
				q.schedSet(it.ID, schedEntry{next: it.NextAttempt})
				note(it.NextAttempt)
			} else {
				q.schedDel(it.ID)
			}
		}()
	}
	wg.Wait()
	q.schedPrune(seen)
	if err := ctx.Err(); err != nil {
		return next, err
	}
	// Bounces queued during this pass have kicked the runner.
	return next, nil
}

// schedEntry is what the runner remembers of an entry between passes.
type schedEntry struct {
	next time.Time
	bad  bool // unreadable: logged once, left for the postmaster
}

func (q *Queue) schedGet(id string) (schedEntry, bool) {
	q.schedMu.Lock()
	defer q.schedMu.Unlock()
	e, ok := q.sched[id]
	return e, ok
}

func (q *Queue) schedSet(id string, e schedEntry) {
	q.schedMu.Lock()
	defer q.schedMu.Unlock()
	if q.sched == nil {
		q.sched = map[string]schedEntry{}
	}
	q.sched[id] = e
}

func (q *Queue) schedDel(id string) {
	q.schedMu.Lock()
	defer q.schedMu.Unlock()
	delete(q.sched, id)
}

// schedPrune forgets entries no longer in the spool.
func (q *Queue) schedPrune(present map[string]bool) {
	q.schedMu.Lock()
	defer q.schedMu.Unlock()
	for id := range q.sched {
		if !present[id] {
			delete(q.sched, id)
		}
	}
}

// cleanOrphan removes a message file whose Send never committed, once it
// is old enough that the Send cannot still be in progress.
func (q *Queue) cleanOrphan(id string) {
	p := q.msgPath(id)
	fi, err := os.Stat(p)
	if err != nil || q.now().Sub(fi.ModTime()) < time.Hour {
		return
	}
	if err := os.Remove(p); err == nil {
		q.log().Warn("outbound: removed uncommitted message", "file", p)
	}
}

// attempt tries to deliver every pending recipient of it once, then saves
// its state and sends any bounce that is due.
func (q *Queue) attempt(ctx context.Context, it *item) error {
	// The message is streamed from its file to each recipient; only its
	// header is read into memory.
	body, head, closeBody, err := q.openMessage(it.ID)
	if err != nil {
		// Not again at every pass: at the next retry (in memory only).
		it.NextAttempt = q.now().Add(q.retryDelay(it.Attempts + 1))
		return err
	}
	defer closeBody()
	it.Attempts++
	var local, remote []string
	for _, rcpt := range it.Pending {
		if q.Local != nil && q.Local.IsLocal(ctx, rcpt) {
			local = append(local, rcpt)
		} else {
			remote = append(remote, rcpt)
		}
	}
	var still []string
	var localBody msgspool.Source
	if len(local) > 0 {
		localBody = msgspool.Concat(msgspool.Bytes(q.traced(it)), body)
	}
	for _, rcpt := range local {
		var err error
		if countReceived(head) >= MaxHops {
			// RFC 5321 §6.3: a message that went round too often is a loop.
			err = &Error{Code: 554, Enhanced: "5.4.6", Text: "mail loop: too many Received: fields"}
		} else {
			err = q.Local.DeliverLocal(ctx, it.From, rcpt, localBody)
		}
		switch f := classify(err, q.Hostname, rcpt, q.now()); {
		case err == nil:
			q.log().Info("outbound: delivered locally", "id", it.ID, "rcpt", rcpt)
		case f.permanent():
			it.Failed = append(it.Failed, f)
		default:
			it.Last = &f
			still = append(still, rcpt)
		}
	}
	if len(remote) > 0 {
		relay := q.relay()
		res := relay.send(ctx, q.Hostname, it.From, remote, body)
		for _, rcpt := range remote {
			f, failed := res[rcpt]
			switch {
			case !failed:
				q.log().Info("outbound: relayed", "id", it.ID, "rcpt", rcpt, "smarthost", relay.Addr)
			case f.permanent():
				q.log().Warn("outbound: refused", "id", it.ID, "rcpt", rcpt, "remote", f.Remote, "code", f.Code, "reply", f.Text)
				it.Failed = append(it.Failed, f)
			default:
				q.log().Warn("outbound: deferred", "id", it.ID, "rcpt", rcpt, "remote", f.Remote, "code", f.Code, "reply", f.Text)
				ff := f
				it.Last = &ff
				still = append(still, rcpt)
			}
		}
	}
	it.Pending = still
	expired := len(still) > 0 && q.now().Sub(it.Created) >= q.window()
	if expired {
		for _, rcpt := range still {
			f := failure{Rcpt: rcpt, Text: "no delivery attempt succeeded", At: q.now()}
			if it.Last != nil {
				f = *it.Last
				f.Rcpt = rcpt
			}
			f.Expired = true
			it.Failed = append(it.Failed, f)
		}
		it.Pending = nil
	}
	it.NextAttempt = q.now().Add(q.retryDelay(it.Attempts))
	if len(it.Pending) == 0 && len(it.Failed) == 0 {
		return q.remove(it.ID) // all delivered: nothing to remember
	}
	// Save before acting on the outcome so a crash repeats at most this
	// attempt's bounce, and never forgets a recipient.
	if err := q.saveMeta(it); err != nil {
		return err
	}
	if len(it.Failed) > 0 {
		if err := q.bounce(ctx, it, head); err != nil {
			return err
		}
		it.Failed = nil
		if err := q.saveMeta(it); err != nil {
			return err
		}
	}
	if len(it.Pending) == 0 {
		return q.remove(it.ID)
	}
	return nil
}

// MaxHops is how many Received: fields a message may carry before local
// delivery from the queue refuses it as a loop (a redirect going round
// between local users).
const MaxHops = 30

// traced returns the Received: field (RFC 5321 §4.4) put before the
// message for a local delivery from the queue, so that redirect loops end.
func (q *Queue) traced(it *item) []byte {
	return fmt.Appendf(nil, "Received: by %s (mailmig queue) id %s;\r\n\t%s\r\n", q.Hostname, it.ID, q.now().Format(time.RFC1123Z))
}

// openMessage opens the queued message id for reading from any offset,
// and reads its header section (msgspool.HeaderPrefix).
func (q *Queue) openMessage(id string) (msgspool.Source, []byte, func(), error) {
	f, err := os.Open(q.msgPath(id))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("outbound: read %s: %w", q.msgPath(id), err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("outbound: read %s: %w", q.msgPath(id), err)
	}
	src := io.NewSectionReader(f, 0, fi.Size())
	head, err := msgspool.HeaderPrefix(src)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("outbound: read %s: %w", q.msgPath(id), err)
	}
	return src, head, func() { f.Close() }, nil
}

// countReceived counts the Received: fields in the header of msg (or of
// its header section).
func countReceived(msg []byte) int {
	n := 0
	for _, line := range bytes.Split(headerOf(msg), []byte("\n")) {
		if len(line) >= 9 && bytes.EqualFold(line[:9], []byte("received:")) {
			n++
		}
	}
	return n
}

// bounce queues a DSN to the sender of it for its failed recipients.
// Bounces themselves (null sender) are never bounced: they are logged.
func (q *Queue) bounce(ctx context.Context, it *item, body []byte) error {
	if it.From == "" {
		for _, f := range it.Failed {
			q.log().Error("outbound: dropping undeliverable bounce", "id", it.ID, "rcpt", f.Rcpt, "remote", f.Remote, "reply", f.Text)
		}
		return nil
	}
	dsn := buildDSN(q.Hostname, q.now(), it, body)
	id, err := q.enqueue(ctx, "", []string{it.From}, bytes.NewReader(dsn))
	if err != nil {
		return fmt.Errorf("outbound: queue bounce for %s to <%s>: %w", it.ID, it.From, err)
	}
	q.log().Info("outbound: bounced", "id", it.ID, "to", it.From, "dsn", id, "failed", len(it.Failed))
	return nil
}
