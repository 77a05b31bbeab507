package delivery

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"mailmig/server/sieve"
)

// scriptTimeout bounds one script run (regex and body tests included).
const scriptTimeout = 10 * time.Second

// runScripts runs the global and/or the user's script (see the package
// comment for the order) and returns the combined outcome.
func (d *Deliverer) runScripts(ctx context.Context, env Envelope, m *sieve.Message, cs *cachedStore) (*sieve.Outcome, error) {
	g := d.global()
	user, userErr := d.userScript(env.User)
	if userErr != nil && g.err == nil {
		// A personal script that does not compile must not switch the
		// site's filtering off: the global script runs instead, and the
		// error is reported with the result.
		user = nil
	} else if userErr != nil {
		return nil, userErr
	}
	var seq []*sieve.Script
	switch {
	case user == nil:
		if g.err != nil {
			return nil, g.err
		}
		seq = []*sieve.Script{g.script}
	case g.cfg.Before:
		if g.err != nil {
			return nil, g.err
		}
		seq = []*sieve.Script{g.script, user}
	default:
		seq = []*sieve.Script{user}
	}
	in := &sieve.Input{
		EnvelopeFrom: env.From,
		EnvelopeTo:   env.To,
		Msg:          m,
		MailboxExists: func(ctx context.Context, name string) (bool, error) {
			_, err := cs.store.Folder(name)
			return err == nil, nil
		},
	}
	ctx, cancel := context.WithTimeout(ctx, scriptTimeout)
	defer cancel()
	var total *sieve.Outcome
	for i, s := range seq {
		o, err := s.Execute(ctx, in)
		if err != nil {
			which := "global"
			if s == user {
				which = "user"
			}
			return nil, fmt.Errorf("delivery: user %s: %s sieve script: %w", env.User, which, err)
		}
		total = merge(total, o)
		if i+1 < len(seq) && !o.ImplicitKeep {
			break // the global script decided: the user's does not run
		}
	}
	return total, userErr
}

// merge adds b's actions to a's; b's implicit keep decides.
func merge(a, b *sieve.Outcome) *sieve.Outcome {
	if a == nil {
		return b
	}
	out := *b
	out.Keep = a.Keep || b.Keep
	out.Mailboxes = append(append([]string(nil), a.Mailboxes...), b.Mailboxes...)
	out.Create = append(append([]string(nil), a.Create...), b.Create...)
	out.Redirects = append(append([]string(nil), a.Redirects...), b.Redirects...)
	out.Vacations = append(append([]sieve.Vacation(nil), a.Vacations...), b.Vacations...)
	out.HeaderEdits = append(append([]sieve.HeaderEdit(nil), a.HeaderEdits...), b.HeaderEdits...)
	if out.Reject == nil {
		out.Reject = a.Reject
	}
	if len(b.Flags) == 0 {
		out.Flags = a.Flags
	}
	return &out
}

// userScript returns the user's compiled active script (nil for none),
// cached by file identity so an unchanged script is compiled once.
func (d *Deliverer) userScript(user string) (*sieve.Script, error) {
	if d.ScriptsFor == nil {
		return nil, nil
	}
	stor, err := d.ScriptsFor(user)
	if err != nil {
		return nil, fmt.Errorf("delivery: user %s: sieve storage: %w", user, err)
	}
	if stor == nil {
		return nil, nil
	}
	p, err := stor.ActivePath()
	if err != nil || p == "" {
		return nil, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("delivery: user %s: stat %s: %w", user, p, err)
	}
	var ino uint64
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(sys.Ino)
	}
	st := &d.state
	st.mu.Lock()
	c := st.scripts[p]
	st.mu.Unlock()
	if c != nil && c.size == fi.Size() && c.mtime.Equal(fi.ModTime()) && c.ino == ino {
		return c.s, c.err
	}
	src, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("delivery: user %s: read %s: %w", user, p, err)
	}
	c = &cachedScript{size: fi.Size(), mtime: fi.ModTime(), ino: ino}
	c.s, c.err = sieve.Compile(src, sieve.Options{})
	if c.err != nil {
		c.err = fmt.Errorf("delivery: user %s: compile %s: %w", user, p, c.err)
	}
	st.mu.Lock()
	st.scripts[p] = c
	st.mu.Unlock()
	return c.s, c.err
}
