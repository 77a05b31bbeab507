package delivery

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
		Include: func(ctx context.Context, global bool, name string) (*sieve.Script, error) {
			return d.included(g, env.User, global, name)
		},
		DuplicateSeen: func(ctx context.Context, key string, period time.Duration) (bool, error) {
			// RFC 7352 §3.3: seen within :seconds (default a week).
			return d.state.vacation.VacationSeen(ctx, env.User, duplicateHandle, key, d.now().Add(-period))
		},
		Spamtest:  d.spamtest(),
		Virustest: d.Virustest,
		Now:       d.Now,
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
	out.Duplicates = append(append([]sieve.Duplicate(nil), a.Duplicates...), b.Duplicates...)
	if len(a.MailboxFlags) > 0 {
		out.MailboxFlags = map[string][]string{}
		for k, v := range a.MailboxFlags {
			out.MailboxFlags[k] = v
		}
		for k, v := range b.MailboxFlags {
			out.MailboxFlags[k] = v
		}
	}
	if out.KeepFlags == nil {
		out.KeepFlags = a.KeepFlags
	}
	if out.Reject == nil {
		out.Reject = a.Reject
	}
	if len(b.Flags) == 0 {
		out.Flags = a.Flags
	}
	return &out
}

// duplicateHandle keeps duplicate-test ids (RFC 7352) in the vacation
// memory apart from vacation replies.
const duplicateHandle = "\x00sieve-duplicate"

// scriptName is how logs name a script: its file name without .sieve.
func scriptName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".sieve")
}

// spamtest is the spamtest configuration: Deliverer.Spamtest, or the
// site's X-Spam-Level stars with 5 meaning certainly spam.
func (d *Deliverer) spamtest() *sieve.TestConfig {
	if d.Spamtest != nil {
		return d.Spamtest
	}
	h := d.global().cfg.SpamHeader
	if h == "" {
		h = "X-Spam-Level"
	}
	return &sieve.TestConfig{Header: h, Type: "strlen", Max: 5}
}

// includePath is where `include` finds NAME (RFC 6609 §3.2): the user's
// script directory for :personal, the global directory for :global.
func (d *Deliverer) includePath(g *globalState, user string, global bool, name string) (string, error) {
	if global {
		if g.cfg.Dir == "" {
			return "", fs.ErrNotExist
		}
		return filepath.Join(g.cfg.Dir, name+".sieve"), nil
	}
	if d.ScriptsFor == nil || user == "" {
		return "", fs.ErrNotExist
	}
	stor, err := d.ScriptsFor(user)
	if err != nil || stor == nil {
		return "", fs.ErrNotExist
	}
	return filepath.Join(stor.Dir, name+".sieve"), nil
}

// includeSource reads included scripts at compile time (sievec's check
// that they exist and compile).
func (d *Deliverer) includeSource(user string) func(global bool, name string) ([]byte, error) {
	g := d.global()
	return func(global bool, name string) ([]byte, error) {
		return g.includeText(d, user, global, name)
	}
}

func (g *globalState) includeSource(d *Deliverer) func(global bool, name string) ([]byte, error) {
	return func(global bool, name string) ([]byte, error) {
		return g.includeText(d, "", global, name)
	}
}

func (g *globalState) includeText(d *Deliverer, user string, global bool, name string) ([]byte, error) {
	var p string
	var err error
	if d == nil {
		if !global || g.cfg.Dir == "" {
			p, err = "", fs.ErrNotExist
		} else {
			p = filepath.Join(g.cfg.Dir, name+".sieve")
		}
	} else {
		p, err = d.includePath(g, user, global, name)
	}
	var src []byte
	if err == nil {
		src, err = os.ReadFile(p)
	}
	if errors.Is(err, fs.ErrNotExist) && global && name == SpamScriptName {
		h, th := g.cfg.SpamHeader, g.cfg.SpamThreshold
		if h == "" {
			h = "X-Spam-Level"
		}
		if th == "" {
			th = "*****"
		}
		return []byte(DefaultGlobalScript(h, th, g.spamFolder())), nil
	}
	return src, err
}

// included compiles (cached by file identity) the script an include
// names; the global "spam" falls back to the built-in rule.
func (d *Deliverer) included(g *globalState, user string, global bool, name string) (*sieve.Script, error) {
	p, err := d.includePath(g, user, global, name)
	if err == nil {
		var s *sieve.Script
		s, err = d.compileCached(p, user)
		if err == nil {
			return s, nil
		}
	}
	if errors.Is(err, fs.ErrNotExist) && global && name == SpamScriptName {
		return g.spam, nil
	}
	return nil, err
}

// compileCached compiles the script at p, reusing the compiled form while
// the file is unchanged (path, size, mtime, inode).
func (d *Deliverer) compileCached(p, user string) (*sieve.Script, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	c = &cachedScript{size: fi.Size(), mtime: fi.ModTime(), ino: ino}
	c.s, c.err = sieve.Compile(src, sieve.Options{Name: scriptName(p), Include: d.includeSource(user)})
	if c.err != nil {
		c.err = fmt.Errorf("compile %s: %w", p, c.err)
	}
	st.mu.Lock()
	st.scripts[p] = c
	st.mu.Unlock()
	return c.s, c.err
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
	c.s, c.err = sieve.Compile(src, sieve.Options{Name: scriptName(p), Include: d.includeSource(user)})
	if c.err != nil {
		c.err = fmt.Errorf("delivery: user %s: compile %s: %w", user, p, c.err)
	}
	st.mu.Lock()
	st.scripts[p] = c
	st.mu.Unlock()
	return c.s, c.err
}
